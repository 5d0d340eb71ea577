package coordinator

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/rollwave/rollwave/internal/notify"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// Config configures one coordinator server. Build it with DefaultConfig and
// change what you need; New calls Validate.
type Config struct {
	// NodeID names this server in raft and gossip. Must be unique in the cluster.
	NodeID string
	// Region is advertised in gossip metadata.
	Region string
	// GateURLPrefixes, when set, are the only URLs external gates may
	// read (spec.ServerConfig.GateURLPrefixes, parsed).
	GateURLPrefixes spec.ArtifactPrefixes
	// GateCredentialsDir is where external gates' credential files are
	// (spec.ServerConfig.GateCredentialsDir); empty: none.
	GateCredentialsDir string
	// DataDir holds raft.db (log + stable store) and snapshots/. Required
	// unless Dev is set.
	DataDir string
	// Dev runs a single in-memory node that bootstraps itself: for demos
	// and tests; nothing survives a restart.
	Dev bool
	// BootstrapExpect is the number of servers to wait for (found through
	// gossip) before bootstrapping a new cluster. 0 disables bootstrapping:
	// the server waits to be added by an existing leader.
	BootstrapExpect int
	// Join lists gossip addresses (host:port) of servers to join at start.
	Join []string

	// GRPCAddr is the listen address of the gRPC API (operators and agents).
	GRPCAddr string
	// RaftAddr is the listen address of the raft TCP transport.
	RaftAddr string
	// GossipAddr is the listen address of memberlist (TCP and UDP).
	GossipAddr string
	// AdvertiseGRPC, AdvertiseRaft and AdvertiseGossip override what other
	// nodes are told to dial; empty means the bound address.
	AdvertiseGRPC   string
	AdvertiseRaft   string
	AdvertiseGossip string

	// Raft timing. Zero values take DefaultConfig's.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	// FastFailover lets a follower campaign after LeaderLeaseTimeout when a
	// raft connection ends and the leader's raft port refuses connections
	// (failover.go). It has no effect when LeaderLeaseTimeout equals
	// HeartbeatTimeout. Config file: raft.fast_failover.
	FastFailover bool

	// ApplyTimeout bounds one raft write, forwarding included.
	ApplyTimeout time.Duration
	// ReconcileInterval is how often the leader reconciles raft peers with
	// the servers seen in gossip (also done on every gossip event).
	ReconcileInterval time.Duration
	// AgentSilenceTimeout closes an agent session that sent nothing for this
	// long (or five of the agent's own heartbeat intervals, if longer): a
	// cut link sends no FIN.
	AgentSilenceTimeout time.Duration
	// OperatorRateLimit is how many operator API requests per second one
	// client address may make (token bucket of OperatorRateBurst); 0 turns
	// the limit off. Agents, and calls from other servers (a server
	// certificate; without TLS, a forwarded call from a raft server's IP
	// address), are not limited.
	OperatorRateLimit int
	OperatorRateBurst int
	// Limits bound the connections clients may hold on the gRPC listener
	// (per client IP, in total, handshake and idle deadlines).
	Limits Limits
	// HTTPAddr is the HTTP listener's address (/metrics, /v1/health,
	// /v1/ready, pprof; internal/httpapi); "" or "off" turns it off (the
	// default here: the command sets the config file's default, 127.0.0.1:7424).
	HTTPAddr string
	// EnablePprof serves pprof on the HTTP listener when ACLs are off; with
	// ACLs on, pprof needs an admin token whatever this says.
	EnablePprof bool
	// GossipFast selects short gossip probe intervals (tests).
	GossipFast bool
	// Retention bounds the history the replicated state keeps (gc.go).
	Retention Retention
	// Notify configures the leader's notification sender (notify.go,
	// internal/notify): targets, the dashboard's public URL, retry
	// and batching. No targets: nothing is sent.
	Notify notify.Config

	// TLS, when set, turns on mutual TLS 1.3 for the gRPC API (operators,
	// agents, other servers) and for forwarding. Nil means plaintext.
	TLS *tlsutil.Config
	// GossipKey encrypts the gossip pool (16, 24 or 32 bytes); nil = clear.
	GossipKey []byte
	// ACLEnabled requires an operator ACL token (role read, deploy or
	// admin) on every OperatorService call but Status; see acl.go. Set it
	// on every server of a cluster alike.
	ACLEnabled bool

	// Version is reported in Status and gossip metadata.
	Version string
	// Logger receives all logs; nil discards them.
	Logger *slog.Logger

	// raftNet replaces parts of the raft network in tests (fault
	// injection, failover_test.go); the zero value is the real network.
	raftNet raftNetHooks
}

// DefaultConfig returns production defaults, listening on loopback.
func DefaultConfig() Config {
	return Config{
		Region:              "global",
		GRPCAddr:            "127.0.0.1:7420",
		RaftAddr:            "127.0.0.1:7421",
		GossipAddr:          "127.0.0.1:7422",
		HeartbeatTimeout:    1000 * time.Millisecond,
		ElectionTimeout:     1000 * time.Millisecond,
		LeaderLeaseTimeout:  500 * time.Millisecond,
		CommitTimeout:       50 * time.Millisecond,
		SnapshotInterval:    120 * time.Second,
		SnapshotThreshold:   8192,
		TrailingLogs:        10240,
		FastFailover:        true,
		ApplyTimeout:        10 * time.Second,
		ReconcileInterval:   10 * time.Second,
		AgentSilenceTimeout: 10 * time.Second,
		OperatorRateLimit:   50,
		OperatorRateBurst:   100,
		Limits:              DefaultLimits(),
		Retention:           DefaultRetention(),
		Notify:              notify.DefaultConfig(),
		Version:             "dev",
	}
}

// Validate reports the first problem with the configuration, naming the
// field and the bad value.
func (c *Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("node id (node_name) must not be empty")
	}
	if !c.Dev && c.DataDir == "" {
		return errors.New("data_dir is required unless -dev is set")
	}
	if c.Dev && c.BootstrapExpect > 1 {
		return fmt.Errorf("bootstrap_expect = %d cannot be combined with -dev (a dev server is always a single node)", c.BootstrapExpect)
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap_expect must be 0 or more, got %d", c.BootstrapExpect)
	}
	for _, a := range []struct{ name, v string }{
		{"addresses.grpc", c.GRPCAddr}, {"addresses.raft", c.RaftAddr}, {"addresses.gossip", c.GossipAddr},
	} {
		if err := checkHostPort(a.v); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	if c.HTTPAddr != "" && c.HTTPAddr != "off" {
		if err := checkHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("addresses.http: %w", err)
		}
	}
	for _, a := range []struct{ name, v string }{
		{"advertise.grpc", c.AdvertiseGRPC}, {"advertise.raft", c.AdvertiseRaft}, {"advertise.gossip", c.AdvertiseGossip},
	} {
		if a.v == "" {
			continue
		}
		if err := checkHostPort(a.v); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	for _, j := range c.Join {
		if err := checkHostPort(j); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return fmt.Errorf("raft.election_timeout (%s) must be at least raft.heartbeat_timeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("raft.leader_lease_timeout (%s) must not exceed raft.heartbeat_timeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.OperatorRateLimit < 0 || (c.OperatorRateLimit > 0 && c.OperatorRateBurst < 1) {
		return fmt.Errorf("operator rate limit %d/s with burst %d: the rate must be 0 (off) or positive with a burst of at least 1", c.OperatorRateLimit, c.OperatorRateBurst)
	}
	if err := c.Retention.validate(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.Notify.Validate(); err != nil {
		return err
	}
	if c.AgentSilenceTimeout <= 0 {
		return fmt.Errorf("agent silence timeout must be positive, got %s", c.AgentSilenceTimeout)
	}
	if c.ApplyTimeout <= 0 {
		return fmt.Errorf("apply timeout must be positive, got %s", c.ApplyTimeout)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", s, err)
	}
	_ = host
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Logger
}
