// Package coordinator assembles a rollwave coordinator: the raft node with
// the replicated state (internal/raftfsm), the gossip pool, the gRPC
// services for operators and agents, and the leader-only work.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/dashboard"
	"github.com/rollwave/rollwave/internal/deploy/dispatch"
	"github.com/rollwave/rollwave/internal/deploy/rollout"
	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/internal/httpapi"
	"github.com/rollwave/rollwave/internal/notify"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ErrNotLeader is returned by leader-only operations on a follower.
var ErrNotLeader = errors.New("this server is not the raft leader")

// Server is one coordinator. Create it with New; stop it with Leave (graceful)
// and/or Shutdown.
type Server struct {
	cfg Config
	log *slog.Logger

	fsm   *raftfsm.FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	// raftConnClosed receives when an accepted raft connection ends.
	raftConnClosed <-chan struct{}
	boltStore      *raftboltdb.BoltStore // nil in dev mode
	pool           *gossip.Pool
	// known are the servers last seen in gossip (rejoin.go).
	known *knownServers

	grpcSrv *grpc.Server
	grpcLn  net.Listener
	// metrics and the HTTP listener serving them (metrics.go, http.go);
	// http is nil when the listener is off.
	metrics *metrics
	http    *httpapi.Server
	dash    *dashboard.Dashboard // served on http at /ui/
	// tls holds the current certificates (nil without TLS); ReloadTLS
	// swaps them.
	tls    *tlsutil.Reloader
	fwd    *forwarder
	agents *agentRegistry
	// freezePush sends agents the freeze calendar (freeze_push.go).
	freezePush freezePush
	// dispatch gives agents their orders and batches their reports
	// into raft (internal/deploy/dispatch).
	dispatch *dispatch.Dispatcher
	rollout  *rollout.Orchestrator
	// notifier delivers the audit log to the notify targets while this
	// server leads (notify.go).
	notifier *notify.Notifier

	// startLastIndex is the last raft index on disk at start: until it is
	// applied (after contact with a leader) the state is stale.
	startLastIndex uint64

	// advertised addresses, resolved after binding.
	grpcAddr string
	raftAddr string

	leaderNotify chan bool
	leaderMu     sync.Mutex
	leaderCancel context.CancelFunc
	// leaderWG tracks every goroutine of the current leadership term
	// (leader.go: goLeader); stepping down waits for all of them.
	leaderWG *sync.WaitGroup
	// seams replace raft calls of the leadership loop in tests (leader.go).
	seams leaderSeams
	// leaderHooks run when this node gains (true) or loses (false)
	// leadership, in order. They must not block for long.
	leaderHooks []func(ctx context.Context, leader bool)

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	wg           sync.WaitGroup

	// hostLogStreams counts the HostLogs streams relayed now (hostlogs.go).
	hostLogStreams atomic.Int32
}

// New starts a coordinator: it binds its listeners, opens (or creates) its
// raft state, joins gossip and, with BootstrapExpect, forms a cluster once
// enough servers are seen.
func New(cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid server configuration: %w", err)
	}
	log := cfg.logger().With("component", "coordinator", "node", cfg.NodeID)
	s := &Server{
		cfg:          cfg,
		log:          log,
		fsm:          raftfsm.New(cfg.logger().With("component", "raftfsm", "node", cfg.NodeID)),
		leaderNotify: make(chan bool, 16),
		shutdownCh:   make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	// Whatever was opened is closed again when a later step fails.
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("listen on gRPC address %s: %w", cfg.GRPCAddr, err)
	}
	s.grpcLn = newLimitListener(s.grpcLn, cfg.Limits, log.With("listener", "grpc"))
	s.grpcAddr = advertised(cfg.AdvertiseGRPC, s.grpcLn.Addr())

	// The certificates first: raft uses them too (raft_tls.go).
	if cfg.TLS != nil {
		if s.tls, err = tlsutil.NewReloader(*cfg.TLS); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	if err := s.setupRaft(); err != nil {
		return nil, err
	}
	s.startLastIndex = s.raft.LastIndex()

	dataDir := cfg.DataDir
	if cfg.Dev {
		dataDir = ""
	}
	s.known = loadKnownServers(dataDir, s.log)

	gcfg := gossip.DefaultConfig()
	gcfg.NodeName = cfg.NodeID
	gcfg.BindAddr = cfg.GossipAddr
	gcfg.AdvertiseAddr = cfg.AdvertiseGossip
	gcfg.Logger = cfg.logger() // the pool adds component and node itself
	gcfg.Fast = cfg.GossipFast
	gcfg.SecretKey = cfg.GossipKey
	gcfg.Meta = gossip.Meta{
		Role:      gossip.RoleServer,
		NodeID:    cfg.NodeID,
		GRPCAddr:  s.grpcAddr,
		RaftAddr:  s.raftAddr,
		Region:    cfg.Region,
		Version:   cfg.Version,
		Bootstrap: cfg.BootstrapExpect,
	}
	if s.pool, err = gossip.New(gcfg); err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	s.fwd = newForwarder(s)

	opts, err := s.grpcServerOptions()
	if err != nil {
		return nil, err
	}
	opts = append(s.metrics.grpcOptions(), opts...) // outermost: every call is timed (metrics.go)
	opts = append(opts, errorInterceptors()...)     // innermost: maps error kinds to codes (errkind.go)
	s.grpcSrv = grpc.NewServer(opts...)
	rollwavev1.RegisterOperatorServiceServer(s.grpcSrv, &operatorService{s: s})
	agentSvc, err := newAgentService(s)
	if err != nil {
		return nil, fmt.Errorf("agent service: %w", err)
	}
	rollwavev1.RegisterAgentServiceServer(s.grpcSrv, agentSvc)
	if err := s.setupRollout(); err != nil {
		return nil, fmt.Errorf("rollout orchestrator: %w", err)
	}
	if err := s.setupNotify(); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpcSrv.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "error", err)
		}
	}()

	if err := s.startHTTP(); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.metrics.watchLeader(s.raft, s.shutdownCh) }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.agents.watchSilence(cfg.AgentSilenceTimeout, s.log, s.shutdownCh)
	}()
	s.wg.Add(1)
	go s.monitorLeadership()
	if cfg.FastFailover && cfg.LeaderLeaseTimeout < cfg.HeartbeatTimeout {
		s.wg.Add(1)
		go s.watchLeaderDeath(s.raftConnClosed, cfg.raftNet.probeDial)
	}

	if cfg.Dev {
		if err := s.bootstrapSingle(); err != nil {
			return nil, err
		}
	} else if cfg.BootstrapExpect > 0 {
		s.wg.Add(1)
		go s.bootstrapWhenExpected()
	}
	if len(cfg.Join) > 0 {
		s.wg.Add(1)
		go s.joinLoop(cfg.Join)
	}
	s.wg.Add(1)
	go s.rejoinLoop()
	s.log.Info("coordinator started", "grpc_addr", s.grpcAddr, "raft_addr", s.raftAddr, "http_addr", s.HTTPAddr(),
		"gossip_addr", s.pool.LocalAddr(), "dev", cfg.Dev, "bootstrap_expect", cfg.BootstrapExpect,
		"fast_failover", cfg.FastFailover)
	return s, nil
}

// maxMessageSize bounds every gRPC message (spec sources, snapshot chunks).
const maxMessageSize = 8 << 20

func advertised(override string, bound net.Addr) string {
	if override != "" {
		return override
	}
	return bound.String()
}

func (s *Server) setupRaft() error {
	cfg := s.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = s.leaderNotify
	rc.Logger = hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Info,
		Output: newLineLogger(cfg.logger().With("component", "raft", "node", cfg.NodeID)),
	})
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft settings: %w", err)
	}

	var advAddr net.Addr
	if cfg.AdvertiseRaft != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseRaft)
		if err != nil {
			return fmt.Errorf("advertise.raft %q: %w", cfg.AdvertiseRaft, err)
		}
		advAddr = a
	}
	// raft's TCP transport over a stream layer that reports ended
	// connections (failover.go).
	stream, err := newRaftStream(cfg.RaftAddr, advAddr, cfg.raftNet)
	if err != nil {
		return fmt.Errorf("listen on raft address %s: %w", cfg.RaftAddr, err)
	}
	if err := s.secureRaftStream(stream); err != nil {
		stream.Close()
		return err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger.Named("transport"),
	})
	s.trans = trans
	s.raftConnClosed = stream.closed
	s.raftAddr = string(trans.LocalAddr())

	if cfg.Dev {
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(rc, timedFSM{s.fsm, s.metrics}, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			return fmt.Errorf("start raft: %w", err)
		}
		s.raft = r
		return nil
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// raft.db and the snapshots, opened defensively (raft_store.go).
	return s.openRaftStore(rc, raftDir, trans)
}

// secureRaftStream turns on mutual TLS on the raft stream layer when TLS
// is configured (raft_tls.go), and otherwise warns that the raft port is
// open to anyone who can reach it.
func (s *Server) secureRaftStream(stream *raftStream) error {
	if s.tls == nil {
		s.log.Warn("RAFT PORT IS UNAUTHENTICATED: TLS is not configured, so anyone who can reach the raft port can write to the cluster state "+
			"(ACL tokens, releases that run commands on every agent); firewall it to the other servers only, or configure tls",
			"raft_addr", stream.Listener.Addr().String())
		return nil
	}
	server, err := s.tls.ServerOnlyTLSConfig()
	if err != nil {
		return fmt.Errorf("raft tls: %w", err)
	}
	client, err := s.tls.ClientTLSConfig(tlsutil.RoleServer)
	if err != nil {
		return fmt.Errorf("raft tls: %w", err)
	}
	stream.enableTLS(server, client, s.log.With("subsystem", "raft_tls"))
	return nil
}

// bootstrapSingle forms a one-node cluster (dev mode).
func (s *Server) bootstrapSingle() error {
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.raftAddr),
	}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap dev cluster: %w", err)
	}
	return nil
}

// FSM exposes the replicated state for reads (tests, in-process helpers).
func (s *Server) FSM() *raftfsm.FSM { return s.fsm }

// Raft exposes the raft node (tests, in-process helpers).
func (s *Server) Raft() *raft.Raft { return s.raft }

// Gossip exposes the gossip pool.
func (s *Server) Gossip() *gossip.Pool { return s.pool }

// NodeID is this server's raft/gossip id.
func (s *Server) NodeID() string { return s.cfg.NodeID }

// GRPCAddr is the advertised gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcAddr }

// RaftAddr is the advertised raft address.
func (s *Server) RaftAddr() string { return s.raftAddr }

// GossipAddr is the bound gossip address.
func (s *Server) GossipAddr() string { return s.pool.LocalAddr() }

// IsLeader reports whether this node is the raft leader right now.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// AddLeaderHook registers fn to run on every leadership change. On gain it
// receives a context cancelled when leadership is lost. Call before the
// server can become leader (right after New, in tests) or accept that the
// hook first runs on the next change.
func (s *Server) AddLeaderHook(fn func(ctx context.Context, leader bool)) {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	s.leaderHooks = append(s.leaderHooks, fn)
}

// Leave departs gracefully: a leader first hands leadership to another
// voter, then the node leaves gossip so the new leader removes it from the
// raft configuration. Shutdown must still be called afterwards.
func (s *Server) Leave(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if s.IsLeader() {
		if n := s.voterCount(); n > 1 {
			if err := s.raft.LeadershipTransfer().Error(); err != nil {
				s.log.Warn("leadership transfer before leave failed", "error", err)
			}
		}
	}
	// The leave broadcast needs someone to hear it; when everyone is
	// leaving at once nobody confirms it, so do not wait long.
	if err := s.pool.Leave(min(time.Until(deadline), 3*time.Second)); err != nil {
		s.log.Warn("leave broadcast not confirmed; the others will see this server as failed instead of left", "error", err)
	}
	// Wait (bounded) until the leader has removed us, so a quorum is never
	// counted with a server that is gone. Without a leader (the others are
	// leaving too, or quorum is lost) nobody can: stop waiting.
	var leaderless time.Time
	for time.Now().Before(deadline) {
		if !s.inRaftConfig() {
			return nil
		}
		// Still the leader: no other voter took over, so nobody will
		// remove this server (it is the last one, or the rest are gone).
		if s.IsLeader() {
			if s.voterCount() > 1 {
				// A leader may remove itself; it steps down once committed.
				if err := s.raft.RemoveServer(raft.ServerID(s.cfg.NodeID), 0, time.Until(deadline)).Error(); err != nil {
					s.log.Warn("leader could not remove itself from raft", "error", err)
				}
				return nil
			}
			s.log.Info("last voter leaving; the cluster keeps its state on disk")
			return nil
		}
		if addr, _ := s.raft.LeaderWithID(); addr == "" {
			if leaderless.IsZero() {
				leaderless = time.Now()
			} else if time.Since(leaderless) > 2*s.cfg.ElectionTimeout {
				s.log.Warn("no leader to remove this server from raft; leaving anyway")
				return nil
			}
		} else {
			leaderless = time.Time{}
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-s.shutdownCh:
			return nil
		}
	}
	s.log.Warn("left gossip but the leader has not removed this server from raft yet; remove it with 'rollwave operator raft remove-peer' if it does not come back")
	return nil
}

func (s *Server) voterCount() int {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

func (s *Server) inRaftConfig() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(s.cfg.NodeID) {
			return true
		}
	}
	return false
}

// Shutdown stops everything without leaving: the node's raft state stays
// in the cluster configuration (as after a crash or a restart).
func (s *Server) Shutdown() error {
	var err error
	s.shutdownOnce.Do(func() {
		close(s.shutdownCh)
		// Raft first: raft calls pending in leader work (a RemoveServer
		// without quorum, an Apply) then fail at once instead of running
		// out their timeouts.
		if s.raft != nil {
			_ = s.raft.Shutdown().Error()
		}
		s.stopLeaderWork()
		err = s.closeAll()
		s.wg.Wait()
		s.log.Info("coordinator stopped")
	})
	return err
}

func (s *Server) closeAll() error {
	var errs []error
	s.closeHTTP()
	if s.agents != nil {
		// Agent sessions end with a status the agents understand (their
		// handlers are in Recv; Stop alone would just cut the connections).
		s.agents.closeAll(status.Error(codes.Unavailable, "server shutting down"))
	}
	if s.grpcSrv != nil {
		// Stop, not GracefulStop: watch streams would hold it open forever.
		s.grpcSrv.Stop()
	} else if s.grpcLn != nil {
		s.grpcLn.Close()
	}
	if s.fwd != nil {
		s.fwd.close()
	}
	if s.pool != nil {
		if err := s.pool.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
	}
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if s.trans != nil {
		// The listener first, then the pooled connections to the other
		// servers (Close leaves them open): followers see them end and
		// find the raft port closed, as after a crash (failover.go).
		s.trans.Close()
		s.trans.CloseStreams()
	}
	if s.boltStore != nil {
		if err := s.boltStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft store: %w", err))
		}
	}
	return errors.Join(errs...)
}
