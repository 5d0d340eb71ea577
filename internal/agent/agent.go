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
	"github.com/rollwave/rollwave/internal/httpapi"
	"github.com/rollwave/rollwave/internal/spec/speccore"
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
	// rehearsals are rehearsal results waiting for a leader session.
	rehearsals *rehearsalQueue
	metrics    *metricWindows
	// prom are the Prometheus metrics (prom.go); http serves them
	// (nil when the listener is off).
	prom *promMetrics
	http *httpapi.Server
	// logs serves the leader's log requests (logs.go).
	logs *logStreams
	// freezes is the leader's freeze calendar (freeze.go).
	freezes *freezeCalendar

	clock Clock
	// lastAck is the monotonic reading (Clock.Mono, in nanoseconds) of the
	// last heartbeat ack from a leader (or of the agent's start): the
	// agent's idea of "contact". Never a wall-clock time.
	lastAck atomic.Int64
	// probe is the isolation probe the contact watchdog runs (contact.go).
	probe     *contactProbe
	connected atomic.Bool
	leaderID  atomic.Value // string

	// runCtx is Run's context: app reconcilers live as long as the agent,
	// not as long as one session.
	runCtx context.Context
	mu     sync.Mutex
	ctls   map[string]*appCtl
	closed bool
	ctlWG  sync.WaitGroup

	wg sync.WaitGroup
}

// New builds an agent: it binds the gossip address and opens the slot
// state, but contacts nobody until Run.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid agent configuration: %w", err)
	}
	a := &Agent{
		cfg:        cfg,
		log:        cfg.logger().With("component", "agent", "host", cfg.NodeName),
		progress:   newProgressQueue(1024),
		rehearsals: newRehearsalQueue(64),
		metrics:    newMetricWindows(256),
		ctls:       map[string]*appCtl{},
		clock:      cfg.Clock,
	}
	a.leaderID.Store("")
	a.prom = newPromMetrics(a)
	if a.clock == nil {
		a.clock = RealClock()
	}
	a.probe = &contactProbe{clock: a.clock, classify: a.classifyContact, done: a.kickAll}
	a.known = loadCoordinatorBook(cfg.DataDir, a.log)
	a.freezes = loadFreezeCalendar(cfg.DataDir, a.log)
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
		OnStep:           a.prom.onStep,
		Host:             cfg.NodeName,
		OnProgress: func(app string, gen uint64, st rollwavev1.AssignmentState, reason string, evidence map[string]string) {
			a.prom.onProgress(st, reason)
			a.progress.push(&rollwavev1.AssignmentProgress{
				App: app, Generation: gen, State: st, Reason: reason, TimeUnixNano: a.clock.Now().UnixNano(), Evidence: evidence,
			})
		},
	})
	if err != nil {
		return nil, err
	}
	a.logs = newLogStreams(a.mgr, cfg.NodeName, a.log.With("part", "logs"))

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
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	a.lastAck.Store(int64(a.clock.Mono()))

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

	// One reconciler per app the host knows (state file or persisted
	// order): bakes resume, interrupted swaps are redone, and the contact
	// watch runs from the start.
	for app := range a.orders.all() {
		a.ctl(app)
	}
	for _, app := range a.mgr.Apps() {
		a.ctl(app)
	}
	if err := a.startHTTP(); err != nil {
		return err
	}
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.sessionLoop(ctx) }()
	go func() { defer a.wg.Done(); a.sampleLoop(ctx) }()
	notifyReady(a.log)
	a.wg.Add(1)
	go func() { defer a.wg.Done(); watchdogLoop(ctx, a.log) }()

	<-ctx.Done()
	return nil
}

func (a *Agent) shutdown() {
	a.wg.Wait()
	a.closeHTTP()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.ctlWG.Wait()
	a.probe.wait() // no reconciler is left to start another
	if err := a.pool.Leave(5 * time.Second); err != nil && !errors.Is(err, gossip.ErrShutdown) {
		a.log.Warn("leave gossip", "error", err)
	}
	_ = a.pool.Shutdown()
	_ = a.mgr.Close()
	a.log.Info("agent stopped")
}

// ctl returns the app's reconciler, starting it on first use. After
// shutdown began it returns one that is not running (orders then wait for
// the next start, where the persisted order and the leader's resend bring
// them back).
func (a *Agent) ctl(app string) *appCtl {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.ctls[app]
	if !ok {
		c = newAppCtl(a, app)
		a.ctls[app] = c
		if !a.closed && a.runCtx != nil {
			a.ctlWG.Add(1)
			go func() { defer a.ctlWG.Done(); c.run(a.runCtx) }()
		}
	}
	return c
}

// existingCtl returns the app's reconciler if there is one.
func (a *Agent) existingCtl(app string) *appCtl {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctls[app]
}

// kickAll asks every app's reconciler to look now.
func (a *Agent) kickAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.ctls {
		c.poke()
	}
}

// Holding reports whether the app's bake is being held through a
// control-plane outage (rollback.on_control_plane_loss = hold).
func (a *Agent) Holding(app string) bool {
	c := a.existingCtl(app)
	return c != nil && c.holding()
}

// Deliver hands the agent one message from the leader: an assignment,
// revert, finalize or verified order. The session calls it for every
// order it receives; orders coalesce per app (the newest generation
// wins), so delivering faster than the host can act loses nothing but
// superseded generations. It returns an error, and changes nothing, for an
// order it cannot take.
func (a *Agent) Deliver(m *rollwavev1.CoordinatorMessage) error {
	switch msg := m.GetMsg().(type) {
	case *rollwavev1.CoordinatorMessage_Assignment:
		o := msg.Assignment
		if o.GetAssignment().GetApp() == "" || o.GetSpec() == nil {
			return errors.New("assignment order without app or spec")
		}
		if o.GetAssignment().GetGeneration() == 0 {
			return errors.New("assignment order with generation 0")
		}
		if err := shiftPorts(o.GetSpec(), a.cfg.PortOffset); err != nil {
			return fmt.Errorf("assignment order with a bad traffic address: %w", err)
		}
		a.ctl(o.GetAssignment().GetApp()).setOrder(o)
	case *rollwavev1.CoordinatorMessage_Revert:
		if msg.Revert.GetApp() == "" {
			return errors.New("revert order without app")
		}
		a.ctl(msg.Revert.GetApp()).setRevertOrder(msg.Revert.GetGeneration(), msg.Revert.GetReason())
	case *rollwavev1.CoordinatorMessage_Finalize:
		if msg.Finalize.GetApp() == "" {
			return errors.New("finalize order without app")
		}
		a.ctl(msg.Finalize.GetApp()).setFinalize(msg.Finalize.GetGeneration())
	case *rollwavev1.CoordinatorMessage_Verified:
		if msg.Verified.GetApp() == "" {
			return errors.New("verified notice without app")
		}
		a.ctl(msg.Verified.GetApp()).setVerified(msg.Verified.GetGeneration())
	case *rollwavev1.CoordinatorMessage_FreezeCalendar:
		if err := a.freezes.set(msg.FreezeCalendar); err != nil {
			return err
		}
		a.log.Info("freeze calendar received", "windows", len(msg.FreezeCalendar.GetWindows()))
	case *rollwavev1.CoordinatorMessage_Rehearse:
		r := msg.Rehearse
		max := time.Duration(r.GetMaxRollbackTimeMs()) * time.Millisecond
		switch {
		case r.GetApp() == "":
			return errors.New("rehearse order without app")
		case r.GetGeneration() == 0:
			return errors.New("rehearse order with generation 0")
		case r.GetMaxRollbackTimeMs() <= 0 || max > speccore.MaxRollbackTime:
			return fmt.Errorf("rehearse order with max_rollback_time %dms: want 1ms to %s", r.GetMaxRollbackTimeMs(), speccore.MaxRollbackTime)
		}
		a.ctl(r.GetApp()).setRehearse(r.GetGeneration(), max)
	default:
		return fmt.Errorf("not an order: %T", m.GetMsg())
	}
	return nil
}
