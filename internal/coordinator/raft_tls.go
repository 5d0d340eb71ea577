package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Raft over mutual TLS. Whoever can write to a server's raft port can
// append log entries (an admin ACL token, a release that runs a command
// as root on the agents), so with TLS configured the raft stream layer
// accepts only connections that complete a TLS 1.3 handshake with a
// *server* certificate from the cluster CA, and dials the other servers
// the same way, verifying that they hold a server certificate too (the
// models: Nomad's RaftLayer, Consul's raft stream over its TLS pool).
// The certificates come from the same Reloader as gRPC's, so a SIGHUP
// rotation applies to raft's new connections as well.
//
// Handshakes run in their own goroutines, each under a deadline, so a peer
// that connects and says nothing holds neither raft's accept loop nor, for
// long, a connection; at most raftMaxPendingPerIP handshakes from one
// address run at a time.
//
// The early-campaign probe (failover.go) only opens a TCP connection and
// waits for it to stay silent; a TLS listener sends nothing before the
// client's hello either, so the probe works unchanged.

const (
	// raftHandshakeTimeout bounds a TLS handshake on the raft port.
	raftHandshakeTimeout = 5 * time.Second
	// raftMaxPendingPerIP bounds the unfinished handshakes from one
	// address; more are closed at once. Servers open a few connections
	// each (raft pools up to 3 per peer).
	raftMaxPendingPerIP = 16
	// raftRefusedLogEvery spaces the warnings about refused connections,
	// so a flood of them does not flood the log.
	raftRefusedLogEvery = 10 * time.Second
)

// raftTLS is the TLS part of a raftStream.
type raftTLS struct {
	ln      net.Listener
	server  *tls.Config // accepts only server certificates
	client  *tls.Config // presents ours, accepts only server certificates
	timeout time.Duration
	perIP   int
	log     *slog.Logger

	startOnce sync.Once
	ready     chan net.Conn // handshaken connections for Accept
	errs      chan error    // listener errors for Accept
	stop      chan struct{}
	stopOnce  sync.Once

	mu      sync.Mutex
	pending map[string]int // unfinished handshakes by remote IP

	lastWarn   atomic.Int64 // unix nanos of the last refusal warning
	suppressed atomic.Int64 // refusals not logged since then
}

// enableTLS makes s mutual TLS: server is the listener's configuration
// (tlsutil's ServerOnlyTLSConfig), client the dialer's (ClientTLSConfig
// for the server role).
func (s *raftStream) enableTLS(server, client *tls.Config, log *slog.Logger) {
	s.tls = &raftTLS{
		ln: s.Listener, server: server, client: client,
		timeout: raftHandshakeTimeout, perIP: raftMaxPendingPerIP, log: log,
		ready: make(chan net.Conn), errs: make(chan error), stop: make(chan struct{}),
		pending: map[string]int{},
	}
}

func (t *raftTLS) accept() (net.Conn, error) {
	t.startOnce.Do(func() { go t.acceptLoop() })
	select {
	case c := <-t.ready:
		return c, nil
	case err := <-t.errs:
		return nil, err
	case <-t.stop:
		return nil, net.ErrClosed
	}
}

func (t *raftTLS) close() { t.stopOnce.Do(func() { close(t.stop) }) }

// acceptLoop accepts TCP connections and hands each to a handshake
// goroutine. Listener errors go to Accept's caller (raft backs off on
// them); it ends when the listener is closed.
func (t *raftTLS) acceptLoop() {
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case t.errs <- err:
			case <-t.stop:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ip := remoteIP(c.RemoteAddr()) // connlimit.go
		if !t.reserve(ip) {
			t.refused(c.RemoteAddr(), fmt.Errorf("more than %d unfinished TLS handshakes from this address", t.perIP))
			c.Close()
			continue
		}
		go t.handshake(c, ip)
	}
}

func (t *raftTLS) handshake(raw net.Conn, ip string) {
	defer t.release(ip)
	tc := tls.Server(raw, t.server)
	if err := raw.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		raw.Close()
		return
	}
	if err := tc.Handshake(); err != nil {
		raw.Close()
		if errors.Is(err, io.EOF) {
			// Closed without a word: the early-campaign probe, or a port
			// scan. Nothing was offered, nothing refused.
			t.log.Debug("raft connection closed before a TLS handshake", "remote_addr", raw.RemoteAddr().String())
			return
		}
		t.refused(raw.RemoteAddr(), err)
		return
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return
	}
	select {
	case t.ready <- tc:
	case <-t.stop:
		tc.Close()
	}
}

// refused logs a refused connection, at most once per raftRefusedLogEvery.
func (t *raftTLS) refused(remote net.Addr, err error) {
	now := time.Now().UnixNano()
	last := t.lastWarn.Load()
	if now-last < int64(raftRefusedLogEvery) || !t.lastWarn.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return
	}
	t.log.Warn("raft connection refused: the raft port takes only mutual TLS with a server certificate of this cluster",
		"remote_addr", remote.String(), "error", err, "refused_since_last_warning", t.suppressed.Swap(0))
}

func (t *raftTLS) reserve(ip string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[ip] >= t.perIP {
		return false
	}
	t.pending[ip]++
	return true
}

func (t *raftTLS) release(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[ip]--; t.pending[ip] <= 0 {
		delete(t.pending, ip)
	}
}

// dial opens a TLS connection to another server's raft port; the
// handshake (the server's certificate checked) completes within timeout.
func (t *raftTLS) dial(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: t.client}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft TLS connection to %s: %w", addr, err)
	}
	return c, nil
}
