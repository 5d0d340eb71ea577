package coordinator_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
)

// lossyLink is the network path into one server, as a lossy or congested
// link looks to TCP: during a blackout, bytes in either direction arrive
// only when it ends (TCP retransmits after loss), a new connection's SYN
// is lost (a dial times out), and at its start a middlebox resets the
// server's raft connections, so the early-campaign watcher (failover.go)
// runs while the leader is alive. Outside blackouts some reads are
// delayed by a few milliseconds (a slow link).
type lossyLink struct {
	mu    sync.Mutex
	end   chan struct{} // closed when the current blackout ends; nil: none
	conns map[*lossyConn]struct{}

	resets        atomic.Int32 // connections reset by blackouts
	probeTimeouts atomic.Int32 // probes whose dial was lost
}

func newLossyLink() *lossyLink { return &lossyLink{conns: map[*lossyConn]struct{}{}} }

// blackout starts a blackout of d, resetting every open connection.
func (l *lossyLink) blackout(d time.Duration) {
	end := make(chan struct{})
	l.mu.Lock()
	l.end = end
	conns := l.conns
	l.conns = map[*lossyConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Close()
		l.resets.Add(1)
	}
	time.AfterFunc(d, func() {
		l.mu.Lock()
		if l.end == end {
			l.end = nil
		}
		l.mu.Unlock()
		close(end)
	})
}

// blackedOut returns the current blackout's end channel, or nil.
func (l *lossyLink) blackedOut() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

func (l *lossyLink) wrap(c net.Conn) net.Conn {
	lc := &lossyConn{Conn: c, link: l, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc
}

// probeDial is the probe's dial over the link: lost during a blackout.
func (l *lossyLink) probeDial(addr string, timeout time.Duration) (net.Conn, error) {
	if end := l.blackedOut(); end != nil {
		select {
		case <-end:
		case <-time.After(timeout):
		}
		l.probeTimeouts.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}
	return net.DialTimeout("tcp", addr, timeout)
}

type lossyConn struct {
	net.Conn
	link      *lossyLink
	closeOnce sync.Once
	closed    chan struct{}
}

// hold waits out a blackout (or the connection's close).
func (c *lossyConn) hold() error {
	if end := c.link.blackedOut(); end != nil {
		select {
		case <-end:
		case <-c.closed:
			return net.ErrClosed
		}
	}
	return nil
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if err := c.hold(); err != nil {
		return 0, err
	}
	if rand.IntN(5) == 0 { // slow link: up to 20 ms late
		select {
		case <-time.After(time.Duration(rand.IntN(20)) * time.Millisecond):
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n, err := c.Conn.Read(p)
	if err == nil {
		err = c.hold()
	}
	return n, err
}

func (c *lossyConn) Write(p []byte) (int, error) {
	if err := c.hold(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *lossyConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	c.link.mu.Lock()
	delete(c.link.conns, c)
	c.link.mu.Unlock()
	return c.Conn.Close()
}

// TestLossyLinkToTheLeaderCausesNoElection (issue 13 item 9): a
// follower's link to the leader goes through blackouts shorter than the
// heartbeat timeout, each resetting its raft connections while the
// leader is alive and its port answers, and each losing the probe's dial.
// No server may campaign: no candidate, no leader change, the term
// unchanged. The timings (heartbeat 2 s, lease 500 ms) leave a loaded
// machine room not to time out on its own; a blackout (1.2 s) is longer
// than the shortened timeouts an early campaign would set (500 ms-1 s)
// and shorter than raft's own (2-4 s). Treating a lost probe as a dead
// leader made the follower campaign in 3 of 4 blackouts.
func TestLossyLinkToTheLeaderCausesNoElection(t *testing.T) {
	const (
		heartbeat = 2 * time.Second
		blackout  = 1200 * time.Millisecond
		clean     = 800 * time.Millisecond
		rounds    = 4
	)
	links := make([]*lossyLink, 3)
	c := coordtest.NewCluster(t, 3, func(i int, cfg *coordinator.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = heartbeat, heartbeat, 500*time.Millisecond
		links[i] = newLossyLink()
		coordinator.SetRaftNetForTest(cfg, links[i].wrap, links[i].probeDial)
	})
	leader := c.Leader(20 * time.Second)
	victim := c.Followers()[0]
	link := links[c.Index(victim)]
	// The victim must have heard from this leader before the window.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, id := victim.Raft().LeaderWithID()
		return string(id) == leader.NodeID(), fmt.Sprintf("%s sees leader %q", victim.NodeID(), id)
	})
	term := leader.Raft().CurrentTerm()

	var mu sync.Mutex
	var seen []string
	for _, s := range c.Running() {
		obs := make(chan raft.Observation, 256)
		o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
			switch o.Data.(type) {
			case raft.LeaderObservation, raft.RaftState, raft.RequestVoteRequest:
				return true
			}
			return false
		})
		s.Raft().RegisterObserver(o)
		defer s.Raft().DeregisterObserver(o)
		name := s.NodeID()
		done := make(chan struct{})
		defer func() { close(done) }()
		go func() {
			for {
				select {
				case <-done:
					return
				case ob := <-obs:
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%s: %T %+v", name, ob.Data, ob.Data))
					mu.Unlock()
				}
			}
		}()
	}

	for r := 0; r < rounds; r++ {
		link.blackout(blackout)
		<-time.After(blackout + clean) // the fault schedule, not a wait for a condition
	}

	t.Logf("%d raft connections reset, %d probes lost, over %d blackouts of %s", link.resets.Load(), link.probeTimeouts.Load(), rounds, blackout)
	if link.resets.Load() == 0 || link.probeTimeouts.Load() == 0 {
		t.Fatalf("the faults were not exercised: %d resets, %d lost probes", link.resets.Load(), link.probeTimeouts.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("elections or leader changes on a slow link:\n%v", seen)
	}
	for _, s := range c.Running() {
		if got := s.Raft().CurrentTerm(); got != term {
			t.Errorf("%s: term %d, was %d", s.NodeID(), got, term)
		}
		if _, id := s.Raft().LeaderWithID(); string(id) != leader.NodeID() {
			t.Errorf("%s: leader %q, was %s", s.NodeID(), id, leader.NodeID())
		}
	}
}

// TestFastFailoverOffLeavesRaftTimeoutsAlone: with raft.fast_failover =
// false a dead leader is replaced by raft's own timeouts: the followers'
// timeouts are never shortened and the election comes no earlier than
// the heartbeat timeout allows.
func TestFastFailoverOffLeavesRaftTimeoutsAlone(t *testing.T) {
	const slow = 2 * time.Second
	c := coordtest.NewCluster(t, 3, func(_ int, cfg *coordinator.Config) { cfg.FastFailover = false })
	old := c.Leader(30 * time.Second)
	for _, s := range c.Running() {
		rc := s.Raft().ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = slow, slow
		if err := s.Raft().ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
	// Every follower has heard from the leader after the reload.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, s := range c.Followers() {
			if time.Since(s.Raft().LastContact()) > slow/4 {
				return false, s.NodeID() + " has not heard from the leader lately"
			}
		}
		return true, ""
	})
	var shortened atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range c.Followers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if s.Raft().ReloadableConfig().HeartbeatTimeout != slow {
					shortened.Store(true)
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}
	killed := time.Now()
	c.Kill(c.Index(old))
	nl := c.Leader(20 * time.Second)
	took := time.Since(killed)
	close(stop)
	wg.Wait()
	t.Logf("%s leads %s after %s was stopped", nl.NodeID(), took.Round(time.Millisecond), old.NodeID())
	if shortened.Load() {
		t.Error("a follower shortened its raft timeouts with fast_failover off")
	}
	// A follower times out no sooner than slow after its last contact,
	// which was at most slow/4 before the kill.
	if took < slow*3/4 {
		t.Errorf("new leader after %s: earlier than raft's own %s heartbeat timeout allows", took, slow)
	}
}
