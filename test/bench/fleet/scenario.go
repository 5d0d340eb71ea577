package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// simGCPercent is the simulator process's GC target during a run.
const simGCPercent = 400

// Options configure one simulator run.
type Options struct {
	// Bin is bin/rollwave; Dir holds data dirs and logs (a temp dir if
	// empty; kept when KeepDir).
	Bin, Dir string
	KeepDir  bool
	Fleet    FleetConfig
	// RaftTimeout overrides raft's heartbeat/election timeout (0: 1 s default).
	RaftTimeout time.Duration
	// GossipAgents is how many agents also join gossip (a sample).
	GossipAgents int
	// Ramp spreads the agents' first connections over this long.
	Ramp time.Duration
	// Settle is the idle window (all agents connected, no release) over
	// which heartbeats/s and idle coordinator CPU are measured.
	Settle time.Duration
	// Rollout runs one release across the fleet; MaxSize caps a phase.
	Rollout        bool
	MaxSize        string
	RolloutTimeout time.Duration
	// LeaderKills is the number of leader-SIGKILL rounds (0: none).
	LeaderKills int
	// RegisterTimeout bounds the wait for every agent to be connected and
	// registered in raft.
	RegisterTimeout time.Duration
	// Multi, when set, runs many releases at once after the single
	// rollout (multiapp.go).
	Multi *MultiOptions
	// BeforeRollout, when set, is called once the fleet is registered and
	// the idle window is over, right before the releases start (regions.go
	// starts several clusters' releases together with it).
	BeforeRollout func(ctx context.Context)
	Log           io.Writer
}

// CoordUsage is one coordinator's resource use over the run.
type CoordUsage struct {
	Name       string  `json:"name"`
	Leader     bool    `json:"leader_at_end"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// PeakHeapMiB is the highest Go heap in use sampled from its /metrics.
	PeakHeapMiB  float64 `json:"peak_heap_inuse_mib"`
	RSSMiB       float64 `json:"rss_mib"`
	AnonMiB      float64 `json:"anon_mib"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	IdleCPUPct   float64 `json:"idle_cpu_percent"`
	RolloutCPUSe float64 `json:"rollout_cpu_seconds"`
}

// RaftUsage counts the leader's raft log entries and bytes.
type RaftUsage struct {
	RegisterEntries uint64            `json:"register_entries"`
	RegisterBytes   uint64            `json:"register_bytes"`
	RolloutEntries  uint64            `json:"rollout_entries"`
	RolloutBytes    uint64            `json:"rollout_bytes"`
	IdleEntries     uint64            `json:"idle_entries"`
	TotalEntries    uint64            `json:"total_entries"`
	TotalBytes      uint64            `json:"total_bytes"`
	Compacted       uint64            `json:"compacted"`
	ByType          map[string]uint64 `json:"bytes_by_type"`
	CountByType     map[string]uint64 `json:"entries_by_type"`
	FileMiB         float64           `json:"raft_db_mib"`
}

// KillResult is the leader-kill bench.
type KillResult struct {
	Rounds  int       `json:"rounds"`
	Failed  int       `json:"failed_rounds"`
	Seconds []float64 `json:"seconds"`
	P50     float64   `json:"p50_seconds"`
	P99     float64   `json:"p99_seconds"`
	Max     float64   `json:"max_seconds"`
	// Per round: kill → a new leader answers Status (polled every 50 ms),
	// kill → the first agent session welcomed again.
	Election     []float64 `json:"new_leader_seconds"`
	FirstSession []float64 `json:"first_session_seconds"`
}

// Result is what one run prints as JSON.
type Result struct {
	N                  int            `json:"n"`
	Cells              int            `json:"cells"`
	HeartbeatMs        int64          `json:"heartbeat_ms"`
	GossipAgents       int            `json:"gossip_agents"`
	RaftTimeoutMs      int64          `json:"raft_timeout_ms,omitempty"`
	SwapLatencyMs      int64          `json:"swap_latency_ms"`
	SwapJitterMs       int64          `json:"swap_jitter_ms"`
	RegisterSeconds    float64        `json:"register_seconds"`
	HeartbeatsPerSec   float64        `json:"heartbeats_per_second"`
	HeartbeatsSentPS   float64        `json:"heartbeats_sent_per_second"`
	Region             string         `json:"region,omitempty"`
	Rollout            *RolloutResult `json:"rollout,omitempty"`
	Multi              *MultiResult   `json:"multi,omitempty"`
	Kill               *KillResult    `json:"leader_kill,omitempty"`
	Raft               RaftUsage      `json:"raft"`
	Coordinators       []CoordUsage   `json:"coordinators"`
	LeaderPeakMiBPer1k float64        `json:"leader_peak_rss_mib_per_1000_agents"`
	// LeaderPeakHeapMiBPer1k is the leader's peak Go heap in use
	// (go_memstats_heap_inuse_bytes) per 1,000 agents.
	LeaderPeakHeapMiBPer1k float64 `json:"leader_peak_heap_mib_per_1000_agents"`
	// LeaderBaseMiB is the leader's RSS before any agent connected;
	// LeaderMarginalMiBPer1k = (peak − base) per 1,000 agents.
	LeaderBaseMiB          float64 `json:"leader_base_rss_mib"`
	LeaderMarginalMiBPer1k float64 `json:"leader_marginal_rss_mib_per_1000_agents"`
	Elections              int     `json:"elections_after_bootstrap"`
	LeaderChanges          int     `json:"leader_changes_unforced"`
	SimCPUSeconds          float64 `json:"simulator_cpu_seconds"`
	SimPeakRSSMiB          float64 `json:"simulator_peak_rss_mib"`
	// SimCPUShare is the simulator's share of all the CPU time used by
	// the simulator and the coordinators over the run.
	SimCPUShare float64 `json:"simulator_cpu_share"`
	WallSeconds float64 `json:"wall_seconds"`
	Sessions    int64   `json:"sessions_opened"`
	Redirects   int64   `json:"redirects"`
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "fleetsim: "+format+"\n", args...)
	}
}

// RaiseNoFile lifts RLIMIT_NOFILE to its hard limit (5,000 agents are
// 5,000 client sockets here and 5,000 server sockets in the leader, whose
// limit it inherits).
func RaiseNoFile() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// Run starts the cluster and the fleet, measures, and tears down.
func Run(ctx context.Context, o Options) (*Result, error) {
	t0 := time.Now()
	sim0 := SelfCPUSeconds()
	RaiseNoFile()
	// The simulator shares the machine's cores with the coordinators it
	// measures, and at 10,000 agents it used as much CPU as they did,
	// much of it collecting garbage over its ~100,000 goroutine stacks.
	// It has memory to spare: collecting less often makes it cheaper.
	// Set in-process, not through GOGC, which the coordinators inherit
	// (their figures are at the production default).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(simGCPercent))
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "fleetsim")
		if err != nil {
			return nil, err
		}
		o.Dir = d
	}
	if !o.KeepDir {
		defer os.RemoveAll(o.Dir)
	}
	c, err := StartCluster(o.Bin, o.Dir, 3, o.RaftTimeout, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	res := &Result{N: o.Fleet.N, Cells: o.Fleet.Cells, HeartbeatMs: o.Fleet.Heartbeat.Milliseconds(),
		Region: o.Fleet.Region, SwapLatencyMs: o.Fleet.SwapLatency.Milliseconds(), RaftTimeoutMs: o.RaftTimeout.Milliseconds(), SwapJitterMs: o.Fleet.SwapJitter.Milliseconds()}
	l, _ := c.WaitLeader(10 * time.Second)
	o.logf("cluster up, leader %s (logs in %s; leader /metrics at http://%s/metrics)", c.Nodes[l].Name, o.Dir, c.Nodes[l].HTTP)
	// Let the bootstrap election settle before counting elections.
	time.Sleep(2 * time.Second)
	elections0 := c.Elections()

	f := NewFleet(o.Fleet, c.GRPCAddrs())
	fctx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()

	// The leader hint (what gossip's leader flag tells a real agent),
	// /proc samples and leader changes, every 500 ms.
	var mu sync.Mutex
	leader := l
	changes := 0
	forced := 0
	f.SetLeaderHint(c.Nodes[l].GRPC)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-tk.C:
			}
			c.Sample()
			if nl := c.Leader(); nl >= 0 {
				mu.Lock()
				if nl != leader {
					changes++
					leader = nl
				}
				mu.Unlock()
				f.SetLeaderHint(c.Nodes[nl].GRPC)
			}
		}
	}()
	curLeader := func() int { mu.Lock(); defer mu.Unlock(); return leader }

	c.Sample()
	base := c.Usage(l)
	res.LeaderBaseMiB = MiB(base.RSSBytes)
	startIdx := lastIndex(c, curLeader())
	if o.GossipAgents > 0 {
		var seeds []string
		for _, co := range c.Nodes {
			seeds = append(seeds, co.Gossip)
		}
		stopGossip, err := f.JoinGossip(ctx, min(o.GossipAgents, o.Fleet.N), seeds)
		if err != nil {
			return nil, err
		}
		defer stopGossip()
		res.GossipAgents = min(o.GossipAgents, o.Fleet.N)
	}
	regStart := time.Now()
	f.Run(fctx, o.Ramp)
	if err := waitRegistered(ctx, c, f, o.Fleet.N, o.RegisterTimeout); err != nil {
		return nil, err
	}
	res.RegisterSeconds = time.Since(regStart).Seconds()
	o.logf("%d agents connected and registered in %.1fs", o.Fleet.N, res.RegisterSeconds)
	regIdx := lastIndex(c, curLeader())

	// Idle window.
	c.Sample()
	cpu0 := cpus(c)
	acks0, sent0, w0 := f.Acks.Load(), f.Sent.Load(), time.Now()
	idle0 := lastIndex(c, curLeader())
	sleepCtx(ctx, o.Settle)
	c.Sample()
	dt := time.Since(w0).Seconds()
	res.HeartbeatsPerSec = float64(f.Acks.Load()-acks0) / dt
	res.HeartbeatsSentPS = float64(f.Sent.Load()-sent0) / dt
	cpu1 := cpus(c)
	res.Raft.IdleEntries = lastIndex(c, curLeader()) - idle0
	o.logf("idle: %.0f heartbeats/s acked", res.HeartbeatsPerSec)

	rolloutFrom := lastIndex(c, curLeader())
	rolloutTo := rolloutFrom
	var cpu2 []float64
	if o.BeforeRollout != nil {
		o.BeforeRollout(ctx)
	}
	if o.Rollout {
		rr, err := SubmitAndWait(ctx, c, f, "bench-1", "bench", o.MaxSize, o.RolloutTimeout)
		if err != nil {
			return nil, err
		}
		res.Rollout = rr
		rolloutTo = lastIndex(c, curLeader())
		c.Sample()
		cpu2 = cpus(c)
		o.logf("rollout %s in %.1fs: order latency p50 %.0f ms p99 %.0f ms; phase overhead p50 %.0f ms max %.0f ms",
			rr.State, rr.TotalSeconds, rr.OrderLatency.P50, rr.OrderLatency.P99, rr.PhaseOverhead.P50, rr.PhaseOverhead.Max)
	}
	if o.Multi != nil {
		mr, err := runMulti(ctx, c, f, o.Multi, curLeader)
		if err != nil {
			return nil, err
		}
		res.Multi = mr
		o.logf("%d releases at once in %.1fs (one alone: %.1fs): slowest %.2f× the one alone, median %.2f×; %.0f raft entries/s",
			mr.Apps, mr.Window.WallSeconds, mr.Solo.TotalSeconds, mr.MaxSlowdown, mr.MedianSlowdown, mr.Window.RaftEntriesPerSec)
	}
	if o.LeaderKills > 0 {
		kr, err := leaderKills(ctx, c, f, &o, func() { mu.Lock(); forced++; mu.Unlock() })
		if err != nil {
			return nil, err
		}
		res.Kill = kr
	}

	c.Sample()
	res.Elections = c.Elections() - elections0
	mu.Lock()
	res.LeaderChanges = changes - forced
	mu.Unlock()
	final := curLeader()
	stopFleet()
	<-watchDone
	for i, co := range c.Nodes {
		u := c.Usage(i)
		cu := CoordUsage{Name: co.Name, Leader: i == final, PeakRSSMiB: MiB(u.PeakRSSBytes), PeakHeapMiB: MiB(u.PeakHeapInuseBytes), RSSMiB: MiB(u.RSSBytes),
			AnonMiB: MiB(u.AnonBytes), CPUSeconds: u.CPUSeconds, IdleCPUPct: 100 * (cpu1[i] - cpu0[i]) / dt}
		if cpu2 != nil {
			cu.RolloutCPUSe = cpu2[i] - cpu1[i]
		}
		res.Coordinators = append(res.Coordinators, cu)
	}
	if o.Fleet.N > 0 {
		res.LeaderPeakMiBPer1k = res.Coordinators[final].PeakRSSMiB * 1000 / float64(o.Fleet.N)
		res.LeaderMarginalMiBPer1k = (res.Coordinators[final].PeakRSSMiB - res.LeaderBaseMiB) * 1000 / float64(o.Fleet.N)
		res.LeaderPeakHeapMiBPer1k = res.Coordinators[final].PeakHeapMiB * 1000 / float64(o.Fleet.N)
	}
	c.Stop()
	if rl, err := ReadRaftLog(c.Nodes[final].DataDir, startIdx); err == nil {
		res.Raft.TotalEntries, res.Raft.TotalBytes, res.Raft.Compacted = rl.Entries, rl.Bytes, rl.Compacted
		res.Raft.FileMiB = MiB(uint64(rl.FileBytes))
		res.Raft.ByType, res.Raft.CountByType = map[string]uint64{}, map[string]uint64{}
		for t, v := range rl.ByType {
			res.Raft.CountByType[raftfsm.MessageType(t).String()] = v[0]
			res.Raft.ByType[raftfsm.MessageType(t).String()] = v[1]
		}
		res.Raft.RegisterEntries, res.Raft.RegisterBytes = rl.Range(startIdx, regIdx)
		if res.Multi != nil {
			res.Multi.fillRaft(rl)
		}
		if o.Rollout {
			res.Raft.RolloutEntries, res.Raft.RolloutBytes = rl.Range(rolloutFrom, rolloutTo)
		}
	} else {
		o.logf("read raft log: %v", err)
	}
	res.SimCPUSeconds = SelfCPUSeconds() - sim0
	if all := res.SimCPUSeconds + sumCPU(res.Coordinators); all > 0 {
		res.SimCPUShare = res.SimCPUSeconds / all
	}
	if s, err := ReadProc(os.Getpid()); err == nil {
		res.SimPeakRSSMiB = MiB(s.PeakRSSBytes)
	}
	res.Sessions, res.Redirects = f.Sessions.Load(), f.Redirects.Load()
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

func sumCPU(cs []CoordUsage) float64 {
	t := 0.0
	for _, c := range cs {
		t += c.CPUSeconds
	}
	return t
}

func cpus(c *Cluster) []float64 {
	out := make([]float64, len(c.Nodes))
	for i := range c.Nodes {
		out[i] = c.Usage(i).CPUSeconds
	}
	return out
}

func lastIndex(c *Cluster, i int) uint64 {
	if i < 0 {
		return 0
	}
	st, err := c.Status(i)
	if err != nil {
		return 0
	}
	return st.GetLastIndex()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitRegistered waits until every agent has a session and the leader's
// replica lists every host.
func waitRegistered(ctx context.Context, c *Cluster, f *Fleet, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	seen := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if f.Connected() >= n {
			if l := c.Leader(); l >= 0 {
				gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := c.Nodes[l].Client.ListHosts(gctx, &rollwavev1.ListHostsRequest{})
				cancel()
				if err == nil {
					seen = len(r.GetHosts())
					if seen >= n {
						return nil
					}
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %d/%d agents connected, %d hosts registered", timeout, f.Connected(), n, seen)
}
