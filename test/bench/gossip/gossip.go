// Package gossipbench measures real memberlist pools of thousands of
// members, configured exactly as rollwave's agents configure theirs
// (internal/gossip's Pool and its config builder), around a real
// three-coordinator cluster (`rollwave server` processes, which are the
// seeds every agent joins and which run their gossip-driven loops).
//
// The agents' pools all live in this process on 127.0.0.1, each with its
// own UDP and TCP port. It measures how long a join, a graceful leave and
// a crash take to reach every member, false suspicions with the pool idle
// and with every core busy (stress-ng), the CPU, memory and bytes per
// member, and the coordinators' CPU and memory.
package gossipbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/test/bench/fleet"
)

// Options configure one run.
type Options struct {
	// ServerBin is the `rollwave` binary; Dir holds the coordinators'
	// data and logs.
	ServerBin, Dir string
	// N is the number of agent members (the coordinators come on top).
	N int
	// Profile names a memberlist tuning from Profiles; "" is "lan", the
	// production configuration.
	Profile string
	// IdleWindow and LoadWindow are the false-suspicion windows, the second
	// with stress-ng keeping every core busy (0 skips it).
	IdleWindow, LoadWindow time.Duration
	// JoinParallel is how many agents join at once during the ramp: one
	// batch (default 8).
	JoinParallel int
	// RampPace paces the ramp so that it never starves the pool of CPU:
	// after each batch the ramp waits until this process's CPU over a
	// 0.5 s sample is at most RampPace of the machine (a share of all
	// cores), no joined member's memberlist health score is above 0 and
	// no probe timed out in the sample (no member failing probes), for at
	// most RampBatchTimeout. 0:
	// DefaultRampPace; negative: unpaced, batches back to back (from ~500
	// members on 2 cores that saturates both, probes time out and the
	// ramp collapses). Pacing changes only how fast the harness adds
	// members, never memberlist's settings.
	RampPace float64
	// RampBatchTimeout bounds the wait after one batch (default 30 s); a
	// batch that reaches it is counted in Result.RampPaceTimeouts and the
	// ramp goes on.
	RampBatchTimeout time.Duration
	// SettleTimeout bounds the wait, after the ramp, for every agent to see
	// every member alive (default 3 minutes). A pool that has not settled
	// by then is not measured: Run returns ErrNotSettled.
	SettleTimeout time.Duration
	// QuietTimeout bounds the wait, once settled, for the ramp's broadcast
	// backlog to drain (gossip traffic down to QuietBytesPerSec per member)
	// before the timed changes and the windows; 0: SettleTimeout. A pool
	// still busy then is measured anyway and Result.NotQuiet says so.
	QuietTimeout time.Duration
	// QuietBytesPerSec is the per-member send rate under which the pool
	// counts as quiet (default 400 B/s; probes alone send ~110-125).
	QuietBytesPerSec float64
	// MemLimit is the process's soft memory limit (bytes) during the run;
	// the collector runs only near it. 0: 1 GiB + 4 MiB per member.
	MemLimit int64
	// GCPercent, if positive, runs the collector at that GOGC instead of
	// only near MemLimit (and sets no memory limit unless MemLimit does).
	// With the collector off the heap sits at the limit, so the runtime
	// returns freed pages to the OS and faults them in again for every
	// 64 KiB packet buffer: at 1,000 members page faults and zeroing
	// (runtime.memclrNoHeapPointers) took a third of the CPU.
	GCPercent int
	// HeapProfile, if set, is where a heap profile of this process is
	// written with the pool settled (after the idle window).
	HeapProfile string
	// Log receives progress lines at LogLevel and above.
	Log      io.Writer
	LogLevel slog.Level
}

// Profiles are the memberlist tunings a run can use, applied through
// gossip.Config.Adjust on top of the production builder. "lan" changes
// nothing.
var Profiles = map[string]func(*memberlist.Config){
	"lan": nil,
	// memberlist's WAN preset timings.
	"wan": func(mc *memberlist.Config) {
		w := memberlist.DefaultWANConfig()
		mc.TCPTimeout, mc.SuspicionMult, mc.PushPullInterval = w.TCPTimeout, w.SuspicionMult, w.PushPullInterval
		mc.ProbeTimeout, mc.ProbeInterval = w.ProbeTimeout, w.ProbeInterval
		mc.GossipNodes, mc.GossipInterval, mc.GossipToTheDeadTime = w.GossipNodes, w.GossipInterval, w.GossipToTheDeadTime
	},
	// LAN with a longer suspicion: more time for a slow member to refute.
	"lan-susp6": func(mc *memberlist.Config) { mc.SuspicionMult = 6 },
	// LAN with a wider gossip fan-out.
	"lan-gossip4": func(mc *memberlist.Config) { mc.GossipNodes = 4 },
	// LAN without LZW compression: memberlist compresses every packet, a
	// 64 KiB table cleared per message (see docs/performance.md).
	"lan-nocompress": func(mc *memberlist.Config) { mc.EnableCompression = false },
	// LAN probing every 2 s (half the probe traffic).
	"lan-probe2s": func(mc *memberlist.Config) { mc.ProbeInterval = 2 * time.Second },
}

// Result is one run's figures.
type Result struct {
	N            int    `json:"n"`
	Profile      string `json:"profile"`
	Coordinators int    `json:"coordinators"`
	// RampSeconds: first join → every agent sees all N+coordinators alive
	// (or SettleTimeout passed: then Unsettled says what was missing and
	// nothing else was measured).
	RampSeconds float64 `json:"ramp_seconds"`
	Unsettled   string  `json:"unsettled,omitempty"`
	// QuietSeconds: settled → the ramp's broadcast backlog drained (gossip
	// traffic down to probe level); NotQuiet, if set, says the pool was
	// still busy when QuietTimeout ended and the figures were taken anyway.
	QuietSeconds float64 `json:"quiet_seconds"`
	NotQuiet     string  `json:"not_quiet,omitempty"`
	// Joined is how many agents had joined when the ramp ended (all of
	// them unless the run stopped early).
	Joined int `json:"joined"`
	// The ramp's pacing (Options.RampPace; RampPace 0: unpaced).
	// RampJoinSeconds: first join → last batch joined (RampSeconds adds
	// the wait for every agent to see every member). RampBatches were
	// joined; RampHeld of them found the pool over the pace at the first
	// sample (RampHeldCPU samples over the CPU share, RampHeldHealth
	// samples with a member's health score above 0), and
	// RampPaceTimeouts of those reached RampBatchTimeout. RampWait is
	// the wait after each batch (ms, the first 0.5 s sample included),
	// RampWaitSeconds their sum.
	RampPace         float64    `json:"ramp_pace"`
	RampJoinSeconds  float64    `json:"ramp_join_seconds"`
	RampBatches      int        `json:"ramp_batches"`
	RampHeld         int        `json:"ramp_held"`
	RampHeldCPU      int        `json:"ramp_held_cpu_samples"`
	RampHeldHealth   int        `json:"ramp_held_health_samples"`
	RampHeldProbes   int        `json:"ramp_held_probe_samples"`
	RampPaceTimeouts int        `json:"ramp_pace_timeouts"`
	RampWait         fleet.Dist `json:"ramp_wait"`
	RampWaitSeconds  float64    `json:"ramp_wait_seconds"`
	// RampMaxHealth: the highest health score a member showed at a
	// pacing sample; RampProbeTimeouts: direct probes not answered
	// within ProbeTimeout from the first join until settled (memberlist's
	// "Failed UDP ping"); RampCPUPct: this process's CPU over the same
	// span, in % of the machine (all cores).
	RampMaxHealth     int     `json:"ramp_max_health"`
	RampProbeTimeouts int64   `json:"ramp_probe_timeouts"`
	RampCPUPct        float64 `json:"ramp_cpu_pct"`
	// Join, Leave, Crash: from the event (Join called on a new member;
	// Leave called; a member shut down without leaving) to each agent's
	// view showing it (alive; left; dead), over the agents.
	Join  Spread  `json:"join"`
	Leave Spread  `json:"leave"`
	Crash Spread  `json:"crash"`
	Idle  Window  `json:"idle"`
	Load  *Window `json:"load,omitempty"`
	// LeaveCallMs is how long Pool.Leave took on an agent in the pool
	// since the ramp: it first gossips the Leaving flag, then memberlist's
	// leave, waiting for each broadcast's last retransmit.
	LeaveCallMs float64 `json:"leave_call_ms"`

	// HeapPerMemberKiB: live Go heap of this process (after a collection)
	// / members, with the pool settled (each member holds the whole
	// membership).
	HeapPerMemberKiB float64 `json:"heap_per_member_kib"`
	ProcessRSSMiB    float64 `json:"process_rss_mib"`
	// CoordRampCPUSeconds is each coordinator's CPU during the ramp (it
	// serves the joins); CoordBaseCPUPct its CPU before any agent came.
	CoordRampCPUSeconds []float64 `json:"coordinator_ramp_cpu_seconds"`
	CoordBaseCPUPct     []float64 `json:"coordinator_base_cpu_pct"`
	CoordRSSMiB         []float64 `json:"coordinator_rss_mib"`
	LoadAvgBefore       string    `json:"loadavg_before"`
	LoadAvgAfter        string    `json:"loadavg_after"`
	// DroppedEvents: membership events the watchers lost (full channels);
	// non-zero makes the spreads a lower bound.
	DroppedEvents uint64   `json:"dropped_events"`
	OtherWarnings []string `json:"other_warnings,omitempty"`
	Seconds       float64  `json:"seconds"`
}

// Spread is how long one membership change took to reach the agents.
type Spread struct {
	fleet.Dist
	// Reached of Expected agents saw it before the deadline; AsDead counts
	// agents that recorded a graceful leave as a failure.
	Reached  int `json:"reached"`
	Expected int `json:"expected"`
	AsDead   int `json:"as_dead,omitempty"`
}

// Window is a stretch of time with the pool settled and no membership
// change made by the benchmark.
type Window struct {
	Seconds float64 `json:"seconds"`
	Stress  bool    `json:"stress"`
	// RefutedSuspicions: a live agent heard it was suspected (each is a
	// false suspicion); RefutedDeaths: heard it was declared dead.
	RefutedSuspicions int64 `json:"refuted_suspicions"`
	RefutedDeaths     int64 `json:"refuted_deaths"`
	// FalseDeaths: an agent's view showed a live member as dead.
	FalseDeaths int64 `json:"false_deaths"`
	// SuspicionsPerHour: RefutedSuspicions over the whole pool scaled to
	// an hour (the window is short: an extrapolation).
	SuspicionsPerHour float64 `json:"suspicions_per_hour"`
	// Per member: CPU (this process's CPU / agents, in % of one core),
	// bytes sent per second (UDP + TCP) and UDP bytes received per second.
	CPUPctPerMember    float64   `json:"cpu_pct_per_member"`
	SentBytesPerSec    float64   `json:"sent_bytes_per_sec_per_member"`
	UDPRecvBytesPerSec float64   `json:"udp_recv_bytes_per_sec_per_member"`
	TCPConnPerSec      float64   `json:"tcp_connects_per_sec_per_member"`
	ProcessCPUPct      float64   `json:"process_cpu_pct"`
	CoordCPUPct        []float64 `json:"coordinator_cpu_pct"`
	// SuspectMarks: times a pool marked a member suspect (one false
	// suspicion is marked by every pool it reaches).
	SuspectMarks int64 `json:"suspect_marks"`
	// PushPullBytes: TCP bytes per outgoing stream (push/pulls: both
	// members' full state).
	PushPullBytes float64 `json:"tcp_bytes_per_stream"`
}

// agent is one in-process pool.
type agent struct {
	name string
	pool *gossip.Pool
}

// bench is one run's state.
type bench struct {
	opt     Options
	log     *slog.Logger
	cl      *fleet.Cluster
	seeds   []string
	agents  []*agent
	refutes *refuteCounter
	ctr     *counters
	adjust  func(*memberlist.Config)
	// watch is the change the watchers look for now (nil: none).
	watch atomic.Pointer[watch]
	// gone are names shut down on purpose; a dead event about any other
	// name is a false death.
	goneMu      sync.Mutex
	gone        map[string]bool
	falseDeaths atomic.Int64
	watchers    sync.WaitGroup
	dropped     atomic.Uint64
	joined      atomic.Int64
	// extra are members started after the ramp (the timed join), shut
	// down with the agents.
	extra []*agent
	// down are the indexes of agents shut down on purpose; watches skip
	// them.
	down map[int]bool
	// paceCPU is the ramp's last CPU sample (share of the machine), for
	// its progress lines.
	paceCPU float64
}

// watch records, per agent, when its view first matched.
type watch struct {
	name   string
	status gossip.Status // alive, left (dead also accepted, counted), dead
	t0     time.Time
	seen   []atomic.Int64 // ns since t0 (+1, so 0 means not yet)
	asDead atomic.Int64
	left   atomic.Int64
	done   chan struct{}
}

// Run builds the pool, measures it and tears everything down.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.N <= 0 {
		return nil, fmt.Errorf("gossip bench: N %d: must be positive", opt.N)
	}
	if opt.Profile == "" {
		opt.Profile = "lan"
	}
	adjust, ok := Profiles[opt.Profile]
	if !ok {
		return nil, fmt.Errorf("gossip bench: unknown profile %q (have %s)", opt.Profile, profileNames())
	}
	if opt.JoinParallel <= 0 {
		opt.JoinParallel = 8
	}
	switch {
	case opt.RampPace > 1:
		return nil, fmt.Errorf("gossip bench: RampPace %g: a share of the machine's CPU, at most 1 (negative: unpaced)", opt.RampPace)
	case opt.RampPace == 0:
		opt.RampPace = DefaultRampPace
	case opt.RampPace < 0:
		opt.RampPace = 0 // unpaced
	}
	if opt.RampBatchTimeout <= 0 {
		opt.RampBatchTimeout = 30 * time.Second
	}
	if opt.QuietBytesPerSec <= 0 {
		opt.QuietBytesPerSec = 400
	}
	if opt.IdleWindow <= 0 {
		opt.IdleWindow = 20 * time.Second
	}
	if opt.SettleTimeout <= 0 {
		opt.SettleTimeout = 3 * time.Minute
	}
	if opt.QuietTimeout <= 0 {
		opt.QuietTimeout = opt.SettleTimeout
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	// All pools share this process's heap: N members each holding N
	// records is N² objects, and the collector scanning them starved the
	// pools' timers (60 % of the CPU at N=200 in a profile), which a real
	// agent, whose heap holds N records, never sees. Collect only near a
	// memory limit sized for the run instead.
	gcPercent, limit := -1, opt.memLimit()
	if opt.GCPercent > 0 {
		gcPercent, limit = opt.GCPercent, math.MaxInt64
		if opt.MemLimit > 0 {
			limit = opt.MemLimit
		}
	}
	prevGC := debug.SetGCPercent(gcPercent)
	prevLimit := debug.SetMemoryLimit(limit)
	defer func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	}()
	start := time.Now()
	b := &bench{opt: opt, log: slog.New(slog.NewTextHandler(opt.Log, &slog.HandlerOptions{Level: opt.LogLevel})).With("part", "gossip", "n", opt.N),
		refutes: &refuteCounter{}, ctr: installSink(), adjust: adjust, gone: map[string]bool{}, down: map[int]bool{}}
	res := &Result{N: opt.N, Profile: opt.Profile, LoadAvgBefore: loadavg()}
	defer b.teardown()
	if err := b.run(ctx, res); err != nil {
		return res, err
	}
	res.LoadAvgAfter = loadavg()
	res.DroppedEvents = b.dropped.Load()
	b.refutes.mu.Lock()
	res.OtherWarnings = b.refutes.samples
	b.refutes.mu.Unlock()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// DefaultRampPace is Options.RampPace's default: the harness may use 50 %
// of the machine's CPU before it adds the next batch, which leaves the
// rest for bursts, the coordinators and answering probes on time.
const DefaultRampPace = 0.5

// rusageCPU is this process's user+system CPU seconds (getrusage: exact,
// where /proc's clock-tick figures jumped by seconds within one sample).
func rusageCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// paceStep is the sample over which the pacing reads the CPU.
const paceStep = 500 * time.Millisecond

// memLimit is the heap the run may grow to before the collector runs:
// 1 GiB plus 4 MiB per member (a member's view of 2,000 members took
// about 1.5 MiB of live heap), unless Options.MemLimit says otherwise.
func (o Options) memLimit() int64 {
	if o.MemLimit > 0 {
		return o.MemLimit
	}
	return 1<<30 + int64(o.N)*4<<20
}

func profileNames() string {
	var s []string
	for k := range Profiles {
		s = append(s, k)
	}
	return strings.Join(s, ", ")
}

func (b *bench) run(ctx context.Context, res *Result) error {
	var err error
	if err := os.MkdirAll(b.opt.Dir, 0o755); err != nil {
		return err
	}
	// The coordinators are the agents' seeds, as in production.
	b.cl, err = fleet.StartCluster(b.opt.ServerBin, b.opt.Dir, 3, 0, time.Minute)
	if err != nil {
		return fmt.Errorf("start coordinators: %w", err)
	}
	res.Coordinators = len(b.cl.Nodes)
	for _, c := range b.cl.Nodes {
		b.seeds = append(b.seeds, c.Gossip)
	}
	base := b.coordCPU()
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	res.CoordBaseCPUPct = pct(b.coordCPU(), base, 3*time.Second)

	b.log.Info("ramp: starting agents", "batch", b.opt.JoinParallel, "pace", b.opt.RampPace, "profile", b.opt.Profile)
	rampStart := time.Now()
	cpu0 := b.coordCPU()
	self0, probes0 := fleet.SelfCPUSeconds(), b.refutes.probeTimeouts.Load()
	err = b.ramp(ctx, res)
	res.Joined = int(b.joined.Load())
	res.RampJoinSeconds = time.Since(rampStart).Seconds()
	if err != nil {
		return fmt.Errorf("ramp stopped after %d of %d joins in %.0f s: %w", res.Joined, b.opt.N, time.Since(rampStart).Seconds(), err)
	}
	b.log.Info("ramp: all joined", "seconds", res.RampJoinSeconds, "batches", res.RampBatches, "held", res.RampHeld, "wait_s", res.RampWaitSeconds)
	if res.Unsettled, err = b.settle(ctx, len(b.agents)+len(b.seeds), b.opt.SettleTimeout); err != nil {
		return err
	}
	res.RampSeconds = time.Since(rampStart).Seconds()
	res.RampProbeTimeouts = b.refutes.probeTimeouts.Load() - probes0
	res.RampCPUPct = (fleet.SelfCPUSeconds() - self0) / res.RampSeconds / float64(runtime.NumCPU()) * 100
	for i, c := range b.coordCPU() {
		res.CoordRampCPUSeconds = append(res.CoordRampCPUSeconds, c-cpu0[i])
	}
	if res.Unsettled != "" {
		// Spreads timed against a pool whose members do not all know each
		// other are not the figures asked for (a crash row once read 0 s).
		return fmt.Errorf("%w after %.0f s: %s", ErrNotSettled, res.RampSeconds, res.Unsettled)
	}
	b.log.Info("ramp done", "seconds", res.RampSeconds)
	quietStart := time.Now()
	if res.NotQuiet, err = b.quiet(ctx, b.opt.QuietTimeout); err != nil {
		return err
	}
	res.QuietSeconds = time.Since(quietStart).Seconds()
	if res.NotQuiet != "" {
		b.log.Warn("broadcast backlog not drained; measuring anyway", "state", res.NotQuiet)
	} else {
		b.log.Info("pool quiet", "seconds", res.QuietSeconds)
	}
	b.startWatchers()

	if res.Join, err = b.measureJoinLeave(ctx, res); err != nil {
		return err
	}
	b.log.Info("join/leave", "join", res.Join, "leave", res.Leave)
	if res.Idle, err = b.window(ctx, b.opt.IdleWindow, false); err != nil {
		return err
	}
	b.log.Info("idle window", "window", res.Idle)
	var ms runtime.MemStats
	runtime.GC() // the collector is off: count live objects, not garbage
	runtime.ReadMemStats(&ms)
	res.HeapPerMemberKiB = float64(ms.HeapInuse) / 1024 / float64(len(b.agents))
	if b.opt.HeapProfile != "" {
		if err := writeHeapProfile(b.opt.HeapProfile); err != nil {
			b.log.Warn("heap profile", "error", err)
		}
	}
	if s, err := fleet.ReadProc(os.Getpid()); err == nil {
		res.ProcessRSSMiB = fleet.MiB(s.RSSBytes)
	}
	if b.opt.LoadWindow > 0 {
		w, err := b.window(ctx, b.opt.LoadWindow, true)
		if err != nil {
			return err
		}
		res.Load = &w
		b.log.Info("load window", "window", w)
	}
	// The crash last: its suspicion timeout is the longest wait.
	if res.Crash, err = b.measureCrash(ctx); err != nil {
		return err
	}
	b.log.Info("crash", "crash", res.Crash)
	for i := range b.cl.Nodes {
		res.CoordRSSMiB = append(res.CoordRSSMiB, fleet.MiB(b.cl.Usage(i).PeakRSSBytes))
	}
	return nil
}

// newAgent starts one pool as rollwave's agent does (internal/agent:
// gossip.DefaultConfig, role agent), on a loopback port of its own.
func (b *bench) newAgent(name string, cell int) (*agent, error) {
	cfg := gossip.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Meta = gossip.Meta{Role: gossip.RoleAgent, NodeID: name, Cell: fmt.Sprintf("cell-%02d", cell), Region: "global", Version: "gossipbench"}
	cfg.Logger = slog.New(b.refutes)
	cfg.Adjust = b.adjust
	p, err := gossip.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("gossip for %s: %w", name, err)
	}
	return &agent{name: name, pool: p}, nil
}

// ramp starts N agents and joins them in batches of JoinParallel, each
// through one coordinator (round robin, as production agents join through
// their seeds) and one random agent that joined in an earlier batch. A
// join is a push/pull with each address, both sides merging the other's
// whole state, so the newcomer learns the pool at once and the join
// succeeds if either answers: with agents alone as targets, a CPU-starved
// pool left newcomers' dials timing out (562 of 1,000 joined in 6 min on
// a loaded machine). Production agents join with every seed; the timed
// join below does. Between batches the ramp paces itself (pace); it does
// not wait per join for the pool to agree: settle waits once, before the
// measurements.
//
// Why pacing: a newcomer re-gossips every member it learnt 4·⌈log10 N⌉
// times and every member re-gossips the newcomer as often, so building a
// pool costs ~16·N² message sends. In one process on 2 cores, joining
// back to back saturated both cores from ~500 members, probes timed out,
// suspicions added broadcasts and the ramp stalled (720 of 1,000 in
// 475 s). Production spreads that work over N machines.
func (b *bench) ramp(ctx context.Context, res *Result) error {
	// Each batch's pools start just before it joins: 1,000 pools started
	// at once and left alone cost a quarter of the machine in timers
	// while the first hundreds joined, and no agent idles unjoined.
	b.agents = make([]*agent, 0, b.opt.N)
	res.RampPace = b.opt.RampPace
	var joined []string // addresses of agents that have joined
	var waits []time.Duration
	nextLog, t0 := 100, time.Now()
	for lo := 0; lo < b.opt.N; lo += b.opt.JoinParallel {
		hi := min(lo+b.opt.JoinParallel, b.opt.N)
		for i := lo; i < hi; i++ {
			a, err := b.newAgent(fmt.Sprintf("agent-%05d", i), i%10)
			if err != nil {
				return err
			}
			b.agents = append(b.agents, a)
		}
		errs := make([]error, hi-lo)
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			addrs := []string{b.seeds[i%len(b.seeds)]}
			if len(joined) > 0 {
				addrs = append(addrs, joined[rand.N(len(joined))])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				jctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if _, err := b.agents[i].pool.Join(jctx, addrs); err != nil {
					errs[i-lo] = fmt.Errorf("join %s: %w", b.agents[i].name, err)
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			joined = append(joined, b.agents[i].pool.LocalAddr())
		}
		b.joined.Store(int64(hi))
		res.RampBatches++
		if b.opt.RampPace > 0 && hi < b.opt.N {
			w, err := b.pace(ctx, hi, res)
			if err != nil {
				return err
			}
			waits = append(waits, w)
			res.RampWaitSeconds += w.Seconds()
		}
		if hi >= nextLog || hi == b.opt.N {
			nextLog += 100
			b.log.Info("ramp", "joined", hi, "elapsed_s", int(time.Since(t0).Seconds()), "cpu_share", fmt.Sprintf("%.2f", b.paceCPU), "batches", res.RampBatches, "held", res.RampHeld, "pace_timeouts", res.RampPaceTimeouts,
				"wait_s", fmt.Sprintf("%.1f", res.RampWaitSeconds), "max_health", res.RampMaxHealth, "probe_timeouts", b.refutes.probeTimeouts.Load())
		}
	}
	res.RampWait = fleet.NewDist(waits)
	return nil
}

// pace waits, after a batch, until this process's CPU over one paceStep
// sample is at most RampPace of the machine and none of the first n
// agents (those joined) has a memberlist health score above 0, or
// RampBatchTimeout has passed. It returns how long it waited and counts
// what held the batch in res.
func (b *bench) pace(ctx context.Context, n int, res *Result) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(b.opt.RampBatchTimeout)
	cores := float64(runtime.NumCPU())
	for sample := 0; ; sample++ {
		c0, w0, p0 := rusageCPU(), time.Now(), b.refutes.probeTimeouts.Load()
		if err := sleepCtx(ctx, paceStep); err != nil {
			return time.Since(t0), err
		}
		cpu := (rusageCPU() - c0) / time.Since(w0).Seconds() / cores
		b.paceCPU = cpu
		health := 0
		for _, a := range b.agents[:n] {
			health = max(health, a.pool.HealthScore())
		}
		res.RampMaxHealth = max(res.RampMaxHealth, health)
		probes := b.refutes.probeTimeouts.Load() - p0
		if cpu <= b.opt.RampPace && health == 0 && probes == 0 {
			return time.Since(t0), nil
		}
		if probes > 0 {
			res.RampHeldProbes++
		}
		if sample == 0 {
			res.RampHeld++
		}
		if cpu > b.opt.RampPace {
			res.RampHeldCPU++
		}
		if health > 0 {
			res.RampHeldHealth++
		}
		if time.Now().After(deadline) {
			res.RampPaceTimeouts++
			b.log.Warn("ramp: batch still over the pace at its deadline; going on", "joined", n,
				"cpu_share", fmt.Sprintf("%.2f", cpu), "max_health", health, "waited", time.Since(t0).Round(time.Millisecond))
			return time.Since(t0), nil
		}
	}
}

// ErrNotSettled is returned when the pool did not reach "every agent sees every member
// alive" within SettleTimeout, so nothing was measured.
var ErrNotSettled = errors.New("gossip bench: pool not settled")

// quiet waits until the pool's gossip traffic falls to QuietBytesPerSec
// per member (the ramp's broadcast backlog drained: every member
// re-gossips each member it learnt 4·⌈log10 N⌉ times, probes alone send
// ~110 B/s), sampling over 2 s. It returns "" when quiet, else the last
// rate; an error only when ctx ends.
func (b *bench) quiet(ctx context.Context, timeout time.Duration) (string, error) {
	const step = 2 * time.Second
	deadline := time.Now().Add(timeout)
	n := float64(len(b.agents))
	for {
		c0, t0 := b.ctr.snap(), time.Now()
		if err := sleepCtx(ctx, step); err != nil {
			return "", err
		}
		d := b.ctr.snap().sub(c0)
		rate := float64(d.UDPSent+d.TCPSent) / n / time.Since(t0).Seconds()
		if rate <= b.opt.QuietBytesPerSec {
			return "", nil
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("still %.0f B/s sent per member (quiet: <= %.0f) after %s", rate, b.opt.QuietBytesPerSec, timeout), nil
		}
		b.log.Debug("draining", "sent_per_member", rate)
	}
}

// settle waits until every agent sees want members alive. It polls a
// random sample first (Members copies and sorts the whole view), then
// checks them all. After timeout it returns what was still missing; an
// error only when ctx ends.
func (b *bench) settle(ctx context.Context, want int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	// alive counts a pool's alive members and describes the rest.
	alive := func(a *agent) (int, string) {
		n, by := 0, map[gossip.Status]int{}
		for _, m := range a.pool.Members() {
			by[m.Status]++
			if m.Status == gossip.StatusAlive {
				n++
			}
		}
		return n, fmt.Sprintf("%s sees %d of %d alive (by status %v; refuted suspicions so far %d, deaths %d)",
			a.name, n, want, by, b.refutes.suspect.Load(), b.refutes.dead.Load())
	}
	last := ""
	for {
		ok := true
		for k := 0; k < 20 && ok; k++ {
			if n, why := alive(b.agents[rand.N(len(b.agents))]); n != want {
				ok, last = false, why
			}
		}
		if ok {
			for _, a := range b.agents {
				if n, why := alive(a); n != want {
					ok, last = false, why
					break
				}
			}
			if ok {
				return "", nil
			}
		}
		if time.Now().After(deadline) {
			return b.incomplete(want), nil
		}
		b.log.Debug("settling", "state", last)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return "", err
		}
	}
}

// incomplete describes the agents whose view lacks alive members.
func (b *bench) incomplete(want int) string {
	short, missing, dead := 0, 0, 0
	for _, a := range b.agents {
		n := 0
		for _, m := range a.pool.Members() {
			switch m.Status {
			case gossip.StatusAlive:
				n++
			case gossip.StatusDead:
				dead++
			}
		}
		if n < want {
			short++
			missing += want - n
		}
	}
	return fmt.Sprintf("%d of %d agents lacked %.1f alive members on average (%d member records dead in all views; %d refuted suspicions, %d refuted deaths so far)",
		short, len(b.agents), float64(missing)/float64(max(short, 1)), dead, b.refutes.suspect.Load(), b.refutes.dead.Load())
}

// startWatchers subscribes to every agent's events: the current watch's
// matches are timed, and a dead event about a member nobody stopped is a
// false death.
func (b *bench) startWatchers() {
	for i, a := range b.agents {
		ch, _ := a.pool.Subscribe(256) // closed by Shutdown
		b.watchers.Add(1)
		go func() {
			defer b.watchers.Done()
			for ev := range ch {
				if ev.Missed > 0 {
					b.dropped.Add(ev.Missed)
				}
				m := ev.Member
				if ev.Type == gossip.EventLeave && m.Status == gossip.StatusDead {
					b.goneMu.Lock()
					planned := b.gone[m.Name]
					b.goneMu.Unlock()
					if !planned {
						b.falseDeaths.Add(1)
					}
				}
				w := b.watch.Load()
				if w == nil || m.Name != w.name {
					continue
				}
				hit := false
				switch w.status {
				case gossip.StatusAlive:
					hit = ev.Type == gossip.EventJoin
				case gossip.StatusLeft:
					hit = ev.Type == gossip.EventLeave
				case gossip.StatusDead:
					hit = ev.Type == gossip.EventLeave && m.Status == gossip.StatusDead
				}
				if hit && w.seen[i].CompareAndSwap(0, int64(time.Since(w.t0))+1) {
					if w.status == gossip.StatusLeft && m.Status == gossip.StatusDead {
						w.asDead.Add(1)
					}
					if w.left.Add(-1) == 0 {
						close(w.done)
					}
				}
			}
		}()
	}
}

// expect arms a watch for name reaching status on every agent except
// skip (-1: none).
func (b *bench) expect(name string, status gossip.Status, skip int) *watch {
	w := &watch{name: name, status: status, seen: make([]atomic.Int64, len(b.agents)), done: make(chan struct{})}
	n := len(b.agents)
	for i := range b.agents {
		if i == skip || b.down[i] {
			w.seen[i].Store(-1)
			n--
		}
	}
	w.left.Store(int64(n))
	w.t0 = time.Now()
	b.watch.Store(w)
	return w
}

// await waits for w (≤ timeout) and summarises it.
func (b *bench) await(ctx context.Context, w *watch, timeout time.Duration) (Spread, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-ctx.Done():
		return Spread{}, ctx.Err()
	}
	b.watch.Store(nil)
	var ds []time.Duration
	exp := 0
	for i := range w.seen {
		v := w.seen[i].Load()
		if v < 0 {
			continue
		}
		exp++
		if v > 0 {
			ds = append(ds, time.Duration(v-1))
		}
	}
	return Spread{Dist: fleet.NewDist(ds), Reached: len(ds), Expected: exp, AsDead: int(w.asDead.Load())}, nil
}

// measureJoinLeave times a new agent joining through all three seeds (as
// a production agent does), then the graceful leave of an agent that has
// been in the settled pool since the ramp. Not the newcomer's: it learnt
// N members in its join's push/pull and queued each for 4·⌈log10 N⌉
// re-gossips, and memberlist sends the fewest-sent broadcasts first and
// confirms a broadcast (which Pool.Leave waits for) only after its last
// retransmit, so a member leaving within minutes of joining waits for
// that backlog: Pool.Leave took its whole 10 s at 300 members. The
// newcomer stays in the pool until teardown.
func (b *bench) measureJoinLeave(ctx context.Context, res *Result) (Spread, error) {
	a, err := b.newAgent("agent-new", 0)
	if err != nil {
		return Spread{}, err
	}
	b.extra = append(b.extra, a)
	w := b.expect(a.name, gossip.StatusAlive, -1)
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = a.pool.Join(jctx, b.seeds)
	cancel()
	if err != nil {
		return Spread{}, err
	}
	join, err := b.await(ctx, w, 2*time.Minute)
	if err != nil {
		return join, err
	}
	i := len(b.agents) / 3
	leaver := b.agents[i]
	b.goneMu.Lock()
	b.gone[leaver.name] = true // a leave some peers record as dead is counted in AsDead, not as false
	b.goneMu.Unlock()
	w = b.expect(leaver.name, gossip.StatusLeft, i)
	if err := leaver.pool.Leave(10 * time.Second); err != nil {
		b.log.Warn("leave broadcast not confirmed", "error", err)
	}
	res.LeaveCallMs = float64(time.Since(w.t0).Microseconds()) / 1000
	res.Leave, err = b.await(ctx, w, 2*time.Minute)
	_ = leaver.pool.Shutdown() // as an agent does after Leave
	b.down[i] = true
	return join, err
}

// measureCrash stops one agent without leaving and times its death
// reaching the others.
func (b *bench) measureCrash(ctx context.Context) (Spread, error) {
	i := len(b.agents) / 2 // not the leaver (len/3)
	a := b.agents[i]
	b.goneMu.Lock()
	b.gone[a.name] = true
	b.goneMu.Unlock()
	w := b.expect(a.name, gossip.StatusDead, i)
	_ = a.pool.Shutdown()
	return b.await(ctx, w, 3*time.Minute)
}

// window watches the settled pool for d, optionally with stress-ng busy on
// every core, and accounts suspicions, CPU and bytes.
func (b *bench) window(ctx context.Context, d time.Duration, stress bool) (Window, error) {
	w := Window{Stress: stress}
	if stress {
		cmd := exec.CommandContext(ctx, "stress-ng", "--cpu", fmt.Sprint(runtime.NumCPU()), "--timeout", fmt.Sprintf("%ds", int(d.Seconds())+5), "--quiet")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return w, fmt.Errorf("stress-ng (apt-get install stress-ng): %w", err)
		}
		defer func() {
			// stress-ng forks workers into its process group: end the group.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}()
		if err := sleepCtx(ctx, time.Second); err != nil { // let the workers start
			return w, err
		}
	}
	rs, rd, fd := b.refutes.suspect.Load(), b.refutes.dead.Load(), b.falseDeaths.Load()
	c0 := b.ctr.snap()
	cpu0 := fleet.SelfCPUSeconds()
	coord0 := b.coordCPU()
	t0 := time.Now()
	if err := sleepCtx(ctx, d); err != nil {
		return w, err
	}
	el := time.Since(t0)
	dc := b.ctr.snap().sub(c0)
	n := float64(len(b.agents))
	w.Seconds = el.Seconds()
	w.RefutedSuspicions = b.refutes.suspect.Load() - rs
	w.RefutedDeaths = b.refutes.dead.Load() - rd
	w.FalseDeaths = b.falseDeaths.Load() - fd
	w.SuspicionsPerHour = float64(w.RefutedSuspicions) * 3600 / w.Seconds
	w.ProcessCPUPct = (fleet.SelfCPUSeconds() - cpu0) / w.Seconds * 100
	w.CPUPctPerMember = w.ProcessCPUPct / n
	w.SentBytesPerSec = float64(dc.UDPSent+dc.TCPSent) / n / w.Seconds
	w.UDPRecvBytesPerSec = float64(dc.UDPRecv) / n / w.Seconds
	w.TCPConnPerSec = float64(dc.TCPConnect) / n / w.Seconds
	w.SuspectMarks = dc.Suspect
	if dc.TCPConnect > 0 {
		w.PushPullBytes = float64(dc.TCPSent) / float64(dc.TCPConnect)
	}
	w.CoordCPUPct = pct(b.coordCPU(), coord0, el)
	return w, nil
}

// coordCPU samples the coordinators' CPU seconds.
func (b *bench) coordCPU() []float64 {
	b.cl.Sample()
	out := make([]float64, len(b.cl.Nodes))
	for i := range b.cl.Nodes {
		out[i] = b.cl.Usage(i).CPUSeconds
	}
	return out
}

func pct(now, before []float64, d time.Duration) []float64 {
	out := make([]float64, len(now))
	for i := range now {
		out[i] = (now[i] - before[i]) / d.Seconds() * 100
	}
	return out
}

func (b *bench) teardown() {
	if b.watch.Load() != nil {
		b.watch.Store(nil)
	}
	// Shut pools down in parallel: each waits for its listeners.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, a := range append(b.agents, b.extra...) {
		if a == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = a.pool.Shutdown() // closes the watcher's channel
		}()
	}
	wg.Wait()
	b.watchers.Wait()
	if b.cl != nil {
		b.cl.Stop()
	}
	runtime.GC()
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ErrNoServer is returned when the rollwave binary is missing.
var ErrNoServer = errors.New("gossip bench: rollwave binary not found (make build)")

// CheckBin reports ErrNoServer (wrapped) when bin is not a file.
func CheckBin(bin string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w: %s", ErrNoServer, filepath.Clean(bin))
	}
	return nil
}
