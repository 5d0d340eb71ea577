// Package coordtest starts real coordinators in-process for tests: real
// raft with on-disk stores, real memberlist, real gRPC, all on 127.0.0.1
// with short timeouts.
package coordtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Cluster is a set of in-process coordinators. Servers[i] is nil while
// server i is stopped.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	Servers []*coordinator.Server
	Configs []coordinator.Config
	conns   map[string]*grpc.ClientConn
}

// Option adjusts each server's config before it starts.
type Option func(i int, c *coordinator.Config)

// FastConfig returns a config with test timings and loopback addresses
// on free ports.
func FastConfig(t testing.TB, name string) coordinator.Config {
	c := coordinator.DefaultConfig()
	c.NodeID = name
	c.DataDir = t.TempDir()
	c.GRPCAddr = testutil.FreeAddr(t)
	c.RaftAddr = testutil.FreeAddr(t)
	c.GossipAddr = testutil.FreeAddr(t)
	// The HTTP listener binds a port of its own choosing (Server.HTTPAddr).
	c.HTTPAddr = "127.0.0.1:0"
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.ReconcileInterval = 500 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
	c.GossipFast = true
	c.AgentSilenceTimeout = 2 * time.Second
	// Tests poll the API from one address far faster than an operator.
	c.OperatorRateLimit = 0
	// Every test agent and client connects from 127.0.0.1: the production
	// cap of 100 connections per client IP would refuse large fleets.
	c.Limits.RPCMaxConnsPerClient = 10000
	c.Logger = testutil.Logger(t).With("test_node", name)
	return c
}

// NewCluster starts n servers that bootstrap together through gossip
// (bootstrap_expect = n, each joining the first) and waits for a leader.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, conns: map[string]*grpc.ClientConn{}}
	for i := 0; i < n; i++ {
		cfg := FastConfig(t, fmt.Sprintf("c%d", i+1))
		cfg.BootstrapExpect = n
		for _, o := range opts {
			o(i, &cfg)
		}
		c.Configs = append(c.Configs, cfg)
		c.Servers = append(c.Servers, nil)
	}
	t.Cleanup(c.Close)
	for i := range c.Configs {
		if i > 0 {
			c.Configs[i].Join = []string{c.Configs[0].GossipAddr}
		}
		c.startFresh(i)
	}
	c.Leader(15 * time.Second)
	return c
}

// startFresh starts server i for the first time. A port taken since it was
// picked (by another test process) is replaced and the start retried.
func (c *Cluster) startFresh(i int) {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		s, err := coordinator.New(c.Configs[i])
		if err == nil {
			c.mu.Lock()
			c.Servers[i] = s
			c.mu.Unlock()
			return
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			c.t.Fatalf("start %s: %v", c.Configs[i].NodeID, err)
		}
		cfg := &c.Configs[i]
		cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = testutil.FreeAddr(c.t), testutil.FreeAddr(c.t), testutil.FreeAddr(c.t)
	}
}

// Start (re)starts server i from its config and data dir.
func (c *Cluster) Start(i int) *coordinator.Server {
	c.t.Helper()
	s, err := coordinator.New(c.Configs[i])
	if err != nil {
		c.t.Fatalf("start %s: %v", c.Configs[i].NodeID, err)
	}
	c.mu.Lock()
	c.Servers[i] = s
	c.mu.Unlock()
	return s
}

// Kill stops server i abruptly (no leave), like a crash: its data dir stays.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.Servers[i]
	c.Servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		_ = s.Shutdown()
	}
}

// Running returns the servers that are up.
func (c *Cluster) Running() []*coordinator.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*coordinator.Server
	for _, s := range c.Servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Index returns the position of s in Servers.
func (c *Cluster) Index(s *coordinator.Server) int {
	for i, x := range c.Servers {
		if x == s {
			return i
		}
	}
	return -1
}

// Leader waits until exactly one running server leads, every running
// server agrees on it and it has started its leader work, and returns it.
func (c *Cluster) Leader(timeout time.Duration) *coordinator.Server {
	c.t.Helper()
	var leader *coordinator.Server
	testutil.WaitFor(c.t, timeout, func() (bool, string) {
		leader = nil
		var seen []string
		for _, s := range c.Running() {
			_, id := s.Raft().LeaderWithID()
			seen = append(seen, fmt.Sprintf("%s:%s->%q", s.NodeID(), s.Raft().State(), id))
			if s.Raft().State() == raft.Leader {
				if leader != nil {
					return false, "two leaders: " + strings.Join(seen, " ")
				}
				leader = s
			}
		}
		if leader == nil {
			return false, "no leader: " + strings.Join(seen, " ")
		}
		for _, s := range c.Running() {
			if _, id := s.Raft().LeaderWithID(); string(id) != leader.NodeID() {
				return false, "not all agree: " + strings.Join(seen, " ")
			}
		}
		// The leader announces itself in gossip only after its barrier
		// and its leader work: until then it may still append entries
		// (the barrier itself), which tests counting log entries see.
		if !leader.Gossip().LocalMeta().Leader {
			return false, leader.NodeID() + " leads but has not started its leader work yet"
		}
		return true, ""
	})
	return leader
}

// Followers returns the running servers that do not lead.
func (c *Cluster) Followers() []*coordinator.Server {
	var out []*coordinator.Server
	for _, s := range c.Running() {
		if !s.IsLeader() {
			out = append(out, s)
		}
	}
	return out
}

// Client returns an OperatorService client for s.
func (c *Cluster) Client(s *coordinator.Server) rollwavev1.OperatorServiceClient {
	return rollwavev1.NewOperatorServiceClient(c.conn(s.GRPCAddr()))
}

func (c *Cluster) conn(addr string) *grpc.ClientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatalf("dial %s: %v", addr, err)
	}
	c.conns[addr] = cc
	return cc
}

// Close stops every server and closes client connections.
func (c *Cluster) Close() {
	for i := range c.Servers {
		c.Kill(i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, cc := range c.conns {
		cc.Close()
		delete(c.conns, a)
	}
}

// WithACLs turns on operator ACL tokens on every server.
func WithACLs() Option {
	return func(_ int, c *coordinator.Config) { c.ACLEnabled = true }
}

// WithToken returns ctx carrying an ACL token secret for outgoing calls,
// as the CLI sends it.
func WithToken(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}
