// Package agenttest starts real agents in-process for tests: real gossip,
// real gRPC sessions, the process unit driver, on 127.0.0.1.
package agenttest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/agent"
	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// Agent is a running in-process agent.
type Agent struct {
	*agent.Agent
	Name    string
	Cell    string
	DataDir string
	Link    *Link
	cancel  context.CancelFunc
	done    chan error
}

// Options adjust an agent before it starts.
type Options struct {
	// Join is the gossip address to join (required).
	Join string
	// DataDir reuses a data dir (restart); empty = a fresh temp dir.
	DataDir string
	// Heartbeat defaults to 200ms.
	Heartbeat time.Duration
	// PortOffset shifts every release port on this agent, so several
	// agents can run the same release on one loopback.
	PortOffset int
	// TLS and GossipKey secure the agent like its coordinators.
	TLS       *tlsutil.Config
	GossipKey []byte
	// Policy replaces the permissive default local policy.
	Policy *agent.Policy
	// Clock replaces the agent's real clock (tests step its wall time).
	Clock agent.Clock
	// Region is the agent's region (default: the agent's default).
	Region string
}

// Start runs an agent until the test ends (or Stop).
func Start(t testing.TB, name, cell string, o Options) *Agent {
	t.Helper()
	dir := o.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	hb := o.Heartbeat
	if hb == 0 {
		hb = 200 * time.Millisecond
	}
	log := testutil.Logger(t).With("test_agent", name)
	drv, err := slot.NewProcessDriver(slot.ProcessConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	link := &Link{}
	cfg := agent.DefaultConfig()
	cfg.NodeName, cfg.Cell, cfg.DataDir = name, cell, dir
	if o.Region != "" {
		cfg.Region = o.Region
	}
	cfg.Join = []string{o.Join}
	cfg.JoinTimeout = 10 * time.Second
	// Gossip binds port 0 itself and reports the port (GossipAddr): no
	// port is picked and bound again later.
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.GossipFast = true
	cfg.HeartbeatInterval = hb
	cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	cfg.Driver = drv
	cfg.PortOffset = o.PortOffset
	cfg.TLS = o.TLS
	if o.Policy != nil {
		cfg.Policy = *o.Policy
	}
	cfg.GossipKey = o.GossipKey
	cfg.ReconcileEvery = 100 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 50*time.Millisecond, time.Second
	cfg.Clock = o.Clock
	cfg.DialContext = link.Dial
	cfg.Logger = log
	a, err := agent.New(cfg)
	if err != nil {
		drv.Close()
		t.Fatalf("new agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &Agent{Agent: a, Name: name, Cell: cell, DataDir: dir, Link: link, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := a.Run(ctx)
		drv.Close()
		ta.done <- err
	}()
	t.Cleanup(ta.Stop)
	return ta
}

// Stop stops the agent and waits for it (its slot processes die with it,
// as with a real process-driver agent).
func (a *Agent) Stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel = nil
}

// Link is the agent's connection to the coordinators' gRPC API; tests cut
// and heal it.
type Link struct {
	mu    sync.Mutex
	cut   bool
	conns []*linkConn
}

// Dial is the agent's DialContext.
func (l *Link) Dial(ctx context.Context, addr string) (net.Conn, error) {
	l.mu.Lock()
	cut := l.cut
	l.mu.Unlock()
	if cut {
		// Like a pulled cable: nothing answers until the context ends.
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	lc := &linkConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns = append(l.conns, lc)
	l.mu.Unlock()
	return lc, nil
}

func (l *Link) isCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

// linkConn drops everything in both directions while the link is cut,
// without closing: like a pulled cable, neither side gets a FIN or RST and
// each must notice the silence itself.
type linkConn struct {
	net.Conn
	l *Link
}

func (c *linkConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.l.isCut() {
			return n, err
		}
		// Data that arrives across a cut link is lost.
	}
}

func (c *linkConn) Write(b []byte) (int, error) {
	if c.l.isCut() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// Cut silently drops all traffic on open connections and blocks new ones.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
}

// Heal lets traffic through again. Connections that were open during the
// cut are closed, as their streams are corrupt by now (a real cut long
// enough would have timed them out too).
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
