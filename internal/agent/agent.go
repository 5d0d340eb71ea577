package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Agent is one host's agent. Create it with New, run it with Run.
type Agent struct {
	cfg Config
	log *slog.Logger

	pool     *gossip.Pool
	mgr      *slot.Manager
	sampler  *health.Sampler
	orders   *orderStore
	known    *coordinatorBook
	find     finder
	tls      *tlsutil.Reloader
	progress *progressQueue
	metrics  *metricWindows

	// lastAck is the unix-nano time of the last heartbeat ack from a
	// leader (or of the agent's start): the agent's idea of "contact".
	lastAck   atomic.Int64
	connected atomic.Bool
	leaderID  atomic.Value // string

	// runCtx is Run's context: app workers live as long as the agent,
	// not as long as one session.
	runCtx  context.Context
	mu      sync.Mutex
	workers map[string]*appWorker

	wg sync.WaitGroup
}

// New builds an agent: it binds the gossip address and opens the slot
// state, but contacts nobody until Run.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid agent configuration: %w", err)
	}
	a := &Agent{
		cfg:      cfg,
		log:      cfg.logger().With("component", "agent", "host", cfg.NodeName),
		progress: newProgressQueue(1024),
		metrics:  newMetricWindows(256),
		workers:  map[string]*appWorker{},
	}
	a.leaderID.Store("")
	a.known = loadCoordinatorBook(cfg.DataDir, a.log)
	disk := cfg.DiskPath
	if disk == "" {
		disk = cfg.DataDir
	}
	a.sampler = health.NewSampler(disk)
	var err error
	if a.orders, err = newOrderStore(cfg.DataDir); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		if a.tls, err = tlsutil.NewReloader(*cfg.TLS); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	a.mgr, err = slot.NewManager(slot.ManagerConfig{
		DataDir: cfg.DataDir,
		Driver:  cfg.Driver,
		Limits:  cfg.Limits,
		Logger:  cfg.logger().With("host", cfg.NodeName),
		// Every redirect hop of a download is held to the same policy.
		CheckArtifactURL: cfg.Policy.CheckArtifactURL,
		OnProgress: func(app string, gen uint64, st rollwavev1.AssignmentState, reason string) {
			a.progress.push(&rollwavev1.AssignmentProgress{
				App: app, Generation: gen, State: st, Reason: reason, TimeUnixNano: time.Now().UnixNano(),
			})
		},
	})
	if err != nil {
		return nil, err
	}

	gcfg := gossip.DefaultConfig()
	gcfg.NodeName = cfg.NodeName
	gcfg.BindAddr = cfg.GossipAddr
	gcfg.AdvertiseAddr = cfg.AdvertiseGossip
	gcfg.Fast = cfg.GossipFast
	gcfg.SecretKey = cfg.GossipKey
	gcfg.Logger = cfg.logger()
	gcfg.Meta = gossip.Meta{
		Role:    gossip.RoleAgent,
		NodeID:  cfg.NodeName,
		Cell:    cfg.Cell,
		Region:  cfg.Region,
		Version: cfg.Version,
	}
	if a.pool, err = gossip.New(gcfg); err != nil {
		a.mgr.Close()
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	return a, nil
}

// ReloadTLS re-reads the agent's certificate, key and CA (SIGHUP); the
// next session uses them.
func (a *Agent) ReloadTLS() error {
	if a.tls == nil {
		return nil
	}
	return a.tls.Reload()
}

// GossipAddr is the bound gossip address.
func (a *Agent) GossipAddr() string { return a.pool.LocalAddr() }

// Manager exposes the slot manager (tests, status).
func (a *Agent) Manager() *slot.Manager { return a.mgr }

// Connected reports whether a leader session is open right now.
func (a *Agent) Connected() bool { return a.connected.Load() }

// LeaderID is the id of the leader of the current or last session.
func (a *Agent) LeaderID() string { return a.leaderID.Load().(string) }

// Run reconciles the host, joins the pool and serves until ctx ends. An
// agent that never knew a coordinator returns a failure to join at start
// (the command exits 1); one that did (coordinators.json in its data dir)
// starts anyway and keeps looking for them.
func (a *Agent) Run(ctx context.Context) error {
	defer a.shutdown()
	a.runCtx = ctx
	a.lastAck.Store(time.Now().UnixNano())

	// First make the host serve exactly one slot per app, whatever state a
	// crash left it in.
	if err := a.mgr.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile slots at start: %w", err)
	}
	n := 0
	if a.known.empty() {
		// An agent that never knew a coordinator: a join nobody answers is
		// most likely a wrong address, and is reported as such.
		jctx, cancel := context.WithTimeout(ctx, a.cfg.JoinTimeout)
		var err error
		n, err = a.pool.Join(jctx, a.cfg.Join)
		cancel()
		if err != nil {
			return fmt.Errorf("join gossip pool: %w", err)
		}
	}
	// Otherwise the session loop joins (join addresses and the last known
	// coordinators) and keeps trying, however long the coordinators are
	// down: the agent starts its work at once.
	a.log.Info("agent started", "joined", n, "cell", a.cfg.Cell, "driver", a.cfg.Driver.Name(), "gossip_addr", a.pool.LocalAddr())

	a.resumeBakes(ctx)
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.sessionLoop(ctx) }()
	go func() { defer a.wg.Done(); a.isolationLoop(ctx) }()
	go func() { defer a.wg.Done(); a.sampleLoop(ctx) }()
	notifyReady(a.log)
	a.wg.Add(1)
	go func() { defer a.wg.Done(); watchdogLoop(ctx, a.log) }()

	<-ctx.Done()
	return nil
}

func (a *Agent) shutdown() {
	a.wg.Wait()
	a.mu.Lock()
	workers := a.workers
	a.workers = map[string]*appWorker{}
	a.mu.Unlock()
	for _, w := range workers {
		w.stop()
	}
	if err := a.pool.Leave(5 * time.Second); err != nil && !errors.Is(err, gossip.ErrShutdown) {
		a.log.Warn("leave gossip", "error", err)
	}
	_ = a.pool.Shutdown()
	_ = a.mgr.Close()
	a.log.Info("agent stopped")
}

// worker returns the app's worker, starting it on first use.
func (a *Agent) worker(app string) *appWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[app]
	if !ok {
		w = newAppWorker(a.runCtx, a, app)
		a.workers[app] = w
	}
	return w
}
