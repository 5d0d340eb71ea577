package coordinator

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// A leader whose process dies (crash, OOM kill, SIGKILL) closes its raft
// connections at once: the kernel sends FIN or RST for it. Raft itself
// only notices the silence, after a randomised 1-2 heartbeat timeouts and
// often more (docs/performance.md, leader failover). So a follower that
// sees a raft connection end asks whether the leader's raft port still
// accepts connections; when the leader's host answers that nothing listens
// there (connection refused, or a connection reset right after the
// handshake), the leader process is gone, and the follower shortens its
// heartbeat and election timeouts to LeaderLeaseTimeout (the shortest raft
// accepts) until a new leader is known. That only moves the election
// earlier: a follower that still hears from a leader does not campaign,
// and pre-vote keeps a wrong guess from disrupting a live leader.
//
// Only a refusal counts as proof. A probe that times out says the link is
// slow or lossy (or the host has vanished, power loss or a cut cable):
// then the follower waits for raft's own timeouts, as it would without
// this mechanism. Campaigning on a timed-out probe would turn a lossy link
// into elections (TestLossyLinkToTheLeaderCausesNoElection). The whole
// mechanism can be turned off with raft.fast_failover = false.

const (
	// leaderProbeTimeout bounds the dial that checks the leader's raft
	// port, and then how long the probe waits for the connection's reset.
	leaderProbeTimeout = 250 * time.Millisecond
)

// raftStream is the raft transport's stream layer (TCP, like raft's own
// TCPStreamLayer) with every accepted connection reporting its end on
// closed. With tls set, connections are mutual TLS in both directions and
// only server certificates are accepted (raft_tls.go).
type raftStream struct {
	net.Listener
	advertise net.Addr
	closed    chan struct{} // capacity 1: ends coalesce
	tls       *raftTLS      // nil: plaintext
	hooks     raftNetHooks
}

// raftNetHooks let tests put faults between raft servers: acceptWrap wraps
// every accepted raft connection, probeDial replaces the probe's dial. Nil
// fields mean the real network.
type raftNetHooks struct {
	acceptWrap func(net.Conn) net.Conn
	probeDial  func(addr string, timeout time.Duration) (net.Conn, error)
}

func newRaftStream(bind string, advertise net.Addr, hooks raftNetHooks) (*raftStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	addr := advertise
	if addr == nil {
		addr = ln.Addr()
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s is not advertisable: set advertise.raft", addr)
	}
	return &raftStream{Listener: ln, advertise: addr, closed: make(chan struct{}, 1), hooks: hooks}, nil
}

func (s *raftStream) Accept() (net.Conn, error) {
	var (
		c   net.Conn
		err error
	)
	if s.tls != nil {
		c, err = s.tls.accept()
	} else {
		c, err = s.Listener.Accept()
	}
	if err != nil {
		return nil, err
	}
	if s.hooks.acceptWrap != nil {
		c = s.hooks.acceptWrap(c)
	}
	return &watchedConn{Conn: c, closed: s.closed}, nil
}

func (s *raftStream) Close() error {
	err := s.Listener.Close()
	if s.tls != nil {
		s.tls.close()
	}
	return err
}

func (s *raftStream) Addr() net.Addr { return s.advertise }

func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.tls != nil {
		return s.tls.dial(string(addr), timeout)
	}
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", string(addr))
}

// watchedConn reports the first failed read (EOF included) on closed,
// without blocking.
type watchedConn struct {
	net.Conn
	closed chan<- struct{}
	once   sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(func() {
			select {
			case c.closed <- struct{}{}:
			default:
			}
		})
	}
	return n, err
}

// watchLeaderDeath runs on every server with FastFailover: see the
// comment at the top.
func (s *Server) watchLeaderDeath(closed <-chan struct{}, probeDial func(string, time.Duration) (net.Conn, error)) {
	defer s.wg.Done()
	for {
		select {
		case <-s.shutdownCh:
			return
		case <-closed:
		}
		if st := s.raft.State(); st != raft.Follower {
			s.log.Debug("a raft connection ended; not a follower", "state", st.String())
			continue
		}
		addr, id := s.raft.LeaderWithID()
		if addr == "" {
			s.log.Debug("a raft connection ended; no leader known")
			continue
		}
		err := probeRaftPort(string(addr), probeDial)
		switch {
		case err == nil:
			s.log.Debug("a raft connection ended; the leader's raft port answers", "leader", string(id))
			continue // alive: the connection ended for another reason
		case !errors.Is(err, errRaftPortRefused):
			// Slow, lossy or gone: raft's own timeouts decide.
			s.log.Info("a raft connection ended and the leader's raft port did not answer in time; not campaigning early (the link may be slow or lossy)",
				"leader", string(id), "error", err)
			continue
		}
		s.log.Info("the leader's raft port refuses connections; campaigning early",
			"leader", string(id), "error", err, "timeout", s.cfg.LeaderLeaseTimeout)
		s.campaignEarly(id)
	}
}

// errRaftPortRefused marks a probe answered by the leader's host with "no
// process here": the only answer that proves the leader process is gone.
var errRaftPortRefused = errors.New("raft port refuses connections")

// probeRaftPort reports whether a raft server's port accepts a connection
// and keeps it. A process being killed closes its connections before its
// listener, and the kernel completes a handshake on a listener whose
// process is exiting, only to reset the connection a moment later: so the
// probe waits for that reset (a live server sends nothing until asked).
// The error wraps errRaftPortRefused when the host refused or reset the
// connection; any other error (a dial that timed out, an unreachable
// network) proves nothing about the process. dial nil means net.DialTimeout.
func probeRaftPort(addr string, dial func(string, time.Duration) (net.Conn, error)) error {
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	c, err := dial(addr, leaderProbeTimeout)
	if err != nil {
		// A reset while connecting is the same answer: the connection
		// reached the listen queue of a listener that then closed (the
		// process died as we dialled), and was reset with it.
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("%w: %w", errRaftPortRefused, err)
		}
		return err
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(leaderProbeTimeout)); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		return fmt.Errorf("connection to %s: unexpected data from a raft server that was not asked anything", addr)
	}
	return fmt.Errorf("%w: connection to %s closed right after it was accepted: %w", errRaftPortRefused, addr, err)
}

// campaignEarly shortens the raft timeouts until a leader other than dead
// is known (or a bound passes), then restores them.
func (s *Server) campaignEarly(dead raft.ServerID) {
	normal := s.raft.ReloadableConfig()
	fast := normal
	fast.HeartbeatTimeout, fast.ElectionTimeout = s.cfg.LeaderLeaseTimeout, s.cfg.LeaderLeaseTimeout
	if fast.HeartbeatTimeout >= normal.HeartbeatTimeout {
		return // nothing to gain
	}
	obs := make(chan raft.Observation, 4)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	defer s.raft.DeregisterObserver(observer)
	if err := s.raft.ReloadConfig(fast); err != nil {
		s.log.Warn("shorten raft timeouts", "error", err)
		return
	}
	defer func() {
		if err := s.raft.ReloadConfig(normal); err != nil {
			s.log.Error("restore raft timeouts", "error", err)
		}
	}()
	// An election, or two after a split vote, fits well within this.
	bound := time.NewTimer(4*normal.ElectionTimeout + 2*normal.HeartbeatTimeout)
	defer bound.Stop()
	for {
		if _, id := s.raft.LeaderWithID(); id != "" && id != dead {
			return
		}
		select {
		case <-s.shutdownCh:
			return
		case <-bound.C:
			return
		case <-obs:
		}
	}
}
