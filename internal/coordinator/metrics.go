package coordinator

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// metrics are one coordinator's Prometheus metrics, in a registry of its
// own (never the global one: in-process tests run several servers).
//
// Raft's figures are read from raft.Stats() at scrape time rather than
// through hashicorp/raft's go-metrics output: go-metrics keeps one
// process-wide sink (metrics.NewGlobal), which would mix the servers of an
// in-process cluster and pull in a second metrics library; Stats() is per
// raft instance and has what operators watch (term, indexes, state,
// peers). What Stats() lacks — apply latency, leader changes, snapshot
// duration and size — is measured where rollwave itself does it.
//
// Figures about the replicated state (releases, phases, hosts) are read
// from this server's replica at scrape time; a follower's agree with the
// leader's once it has caught up. Agent sessions and heartbeats exist only
// on the leader.
type metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	applyDur      *prometheus.HistogramVec
	leaderChanges prometheus.Counter
	heartbeats    prometheus.Counter
	snapDur       prometheus.Histogram
	snapSize      prometheus.Gauge
	phaseDur      *prometheus.HistogramVec
	gateEvals     *prometheus.CounterVec
	rehearsals    *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
		)),
		applyDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_raft_apply_duration_seconds",
			Help:    "Time from submitting a raft command on this server (the leader) to its commit and apply, by command type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"command"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollwave_raft_leader_changes_total",
			Help: "Leader changes this server observed (elections won by anyone, or the leader lost).",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollwave_agent_heartbeats_total",
			Help: "Agent heartbeats received by this server (only the leader holds sessions); rate() gives heartbeats per second.",
		}),
		snapDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rollwave_raft_snapshot_persist_duration_seconds",
			Help:    "Time to write a raft snapshot of the replicated state.",
			Buckets: prometheus.ExponentialBuckets(.001, 4, 10),
		}),
		snapSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rollwave_raft_snapshot_size_bytes",
			Help: "Size of the last raft snapshot this server wrote.",
		}),
		phaseDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_phase_duration_seconds",
			Help:    "Duration of release phases that ended (started to verified or failed), by app and result.",
			Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800},
		}, []string{"app", "result"}),
		gateEvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollwave_gate_evaluations_total",
			Help: "Gate readings committed to the audit log, by gate and result (passed, failed, inconclusive).",
		}, []string{"gate", "result"}),
		rehearsals: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_rehearsal_rollback_seconds",
			Help:    "Rollback times of rollback rehearsals committed to the audit log (phase.rehearsed), by app and verdict (passed, too_slow, failed, skipped, no_result).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600},
		}, []string{"app", "verdict"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc, m.applyDur, m.leaderChanges, m.heartbeats, m.snapDur, m.snapSize, m.phaseDur, m.gateEvals, m.rehearsals,
		&stateCollector{s: s, m: m}, &deliveryCollector{s: s},
	)
	return m
}

// Registry is the server's metrics registry: what /metrics serves. Parts
// assembled around the server may register their own collectors on it.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// grpcOptions are the interceptors that time every gRPC call by method
// and code; outermost, so refused calls (rate limit, ACL) count too.
func (m *metrics) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// observeApply records one Apply's latency.
func (m *metrics) observeApply(t raftfsm.MessageType, d time.Duration) {
	m.applyDur.WithLabelValues(t.String()).Observe(d.Seconds())
}

// watchLeader counts leader changes from raft's observations until stop
// closes. The observer does not block raft: a full channel drops the
// observation (leader changes are rare; the counter only undercounts if
// several arrive within one read).
func (m *metrics) watchLeader(r *raft.Raft, stop <-chan struct{}) {
	ch := make(chan raft.Observation, 8)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			m.leaderChanges.Inc()
		case <-stop:
			return
		}
	}
}

// timedFSM times raft snapshots and counts their bytes; everything else
// is the FSM's own.
type timedFSM struct {
	*raftfsm.FSM
	m *metrics
}

func (f timedFSM) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return timedSnapshot{FSMSnapshot: snap, m: f.m}, nil
}

type timedSnapshot struct {
	raft.FSMSnapshot
	m *metrics
}

func (t timedSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	cs := &countingSink{SnapshotSink: sink}
	err := t.FSMSnapshot.Persist(cs)
	if err == nil {
		t.m.snapDur.Observe(time.Since(start).Seconds())
		t.m.snapSize.Set(float64(cs.n))
	}
	return err
}

type countingSink struct {
	raft.SnapshotSink
	n int64
}

func (c *countingSink) Write(p []byte) (int, error) {
	n, err := c.SnapshotSink.Write(p)
	c.n += int64(n)
	return n, err
}

var _ io.Writer = (*countingSink)(nil)

// stateCollector reads raft's stats, the replica and the agent registry
// at scrape time, and tails the audit log for gate and phase events.
type stateCollector struct {
	s *Server
	m *metrics

	mu sync.Mutex
	// cursor is the last audit event seq counted; started says whether
	// the first scrape has set it (counting starts there: a restart does
	// not count the retained history again).
	cursor  uint64
	started bool
}

var (
	descRaftState = prometheus.NewDesc("rollwave_raft_state",
		"1 for this server's raft state (leader, follower, candidate, shutdown).", []string{"state"}, nil)
	descRaftHasLeader = prometheus.NewDesc("rollwave_raft_has_leader",
		"1 when this server knows a raft leader.", nil, nil)
	descRaftUint = map[string]*prometheus.Desc{
		"term":                prometheus.NewDesc("rollwave_raft_term", "Current raft term.", nil, nil),
		"commit_index":        prometheus.NewDesc("rollwave_raft_commit_index", "Highest raft log index known committed.", nil, nil),
		"applied_index":       prometheus.NewDesc("rollwave_raft_applied_index", "Highest raft log index applied to the replicated state.", nil, nil),
		"last_log_index":      prometheus.NewDesc("rollwave_raft_last_log_index", "Last raft log index stored on this server.", nil, nil),
		"fsm_pending":         prometheus.NewDesc("rollwave_raft_fsm_pending", "Committed raft entries waiting to be applied.", nil, nil),
		"last_snapshot_index": prometheus.NewDesc("rollwave_raft_last_snapshot_index", "Raft log index of the last snapshot.", nil, nil),
		"num_peers":           prometheus.NewDesc("rollwave_raft_peers", "Other voters in the raft configuration.", nil, nil),
	}
	descRaftLastContact = prometheus.NewDesc("rollwave_raft_last_contact_seconds",
		"Seconds since a follower last heard from the leader (0 on the leader).", nil, nil)
	descSessions = prometheus.NewDesc("rollwave_agent_sessions",
		"Agent sessions open on this server (only the leader holds them).", nil, nil)
	descReleases = prometheus.NewDesc("rollwave_releases",
		"Releases in the replicated state, by state.", []string{"state"}, nil)
	descPhase = prometheus.NewDesc("rollwave_release_phase",
		"Current phase index of each active release.", []string{"release", "app", "phase_state"}, nil)
	descBake = prometheus.NewDesc("rollwave_release_bake_remaining_seconds",
		"Seconds left in the bake of an active release's baking phase (0 once due).", []string{"release", "app", "phase"}, nil)
	descWatch = prometheus.NewDesc("rollwave_release_watch_remaining_seconds",
		"Seconds left in the post_rollout watch of a release in state watching (0 once due).", []string{"release", "app"}, nil)
	descHosts = prometheus.NewDesc("rollwave_hosts",
		"Hosts known to the cluster.", nil, nil)
	descAssignments = prometheus.NewDesc("rollwave_host_assignments",
		"Hosts by app and the state of their current assignment.", []string{"app", "state"}, nil)
)

// Describe sends nothing: an unchecked collector, since what it reports
// exists only once raft runs (DescribeByCollect would read it while the
// server is still being built).
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectRaft(ch)
	s := c.s
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(s.agents.count()))

	// Counts come from one view without copying the hosts (Census).
	st := s.fsm.State()
	census := st.Census()
	for _, rs := range rollwavev1.ReleaseState_value {
		if rs != 0 {
			ch <- prometheus.MustNewConstMetric(descReleases, prometheus.GaugeValue,
				float64(census.Releases[rollwavev1.ReleaseState(rs)]), lowerState(rollwavev1.ReleaseState(rs)))
		}
	}
	now := time.Now()
	for _, r := range census.Live {
		idx := r.GetCurrentPhase()
		if int(idx) < len(r.GetPhases()) {
			p := r.GetPhases()[idx]
			ch <- prometheus.MustNewConstMetric(descPhase, prometheus.GaugeValue, float64(idx),
				r.GetId(), r.GetSpec().GetApp(), lowerState(p.GetState()))
			if p.GetState() == rollwavev1.PhaseState_PHASE_STATE_BAKING && p.GetBakeDeadlineUnixNano() > 0 {
				left := max(0, time.Unix(0, p.GetBakeDeadlineUnixNano()).Sub(now).Seconds())
				ch <- prometheus.MustNewConstMetric(descBake, prometheus.GaugeValue, left,
					r.GetId(), r.GetSpec().GetApp(), strconv.Itoa(int(idx)))
			}
		}
		if r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_WATCHING && r.GetWatchUntilUnixNano() > 0 {
			left := max(0, time.Unix(0, r.GetWatchUntilUnixNano()).Sub(now).Seconds())
			ch <- prometheus.MustNewConstMetric(descWatch, prometheus.GaugeValue, left, r.GetId(), r.GetSpec().GetApp())
		}
	}

	ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(census.Hosts))
	for k, n := range census.Assignments {
		ch <- prometheus.MustNewConstMetric(descAssignments, prometheus.GaugeValue, float64(n), k.App, lowerState(k.State))
	}
	c.tailEvents(st)
}

func (c *stateCollector) collectRaft(ch chan<- prometheus.Metric) {
	r := c.s.raft
	state := r.State()
	for _, name := range []raft.RaftState{raft.Leader, raft.Follower, raft.Candidate, raft.Shutdown} {
		v := 0.0
		if name == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, strings.ToLower(name.String()))
	}
	has := 0.0
	if _, id := r.LeaderWithID(); id != "" {
		has = 1
	}
	ch <- prometheus.MustNewConstMetric(descRaftHasLeader, prometheus.GaugeValue, has)
	stats := r.Stats()
	for key, desc := range descRaftUint {
		if v, err := strconv.ParseUint(stats[key], 10, 64); err == nil {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v))
		}
	}
	last := 0.0
	if state != raft.Leader {
		// "never" before any contact: reported as not present.
		d, err := time.ParseDuration(stats["last_contact"])
		if err != nil {
			return
		}
		last = d.Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descRaftLastContact, prometheus.GaugeValue, last)
}

// maxTail bounds the events one scrape reads; the rest wait for the next.
const maxTail = 5000

// tailEvents counts gate readings and ended phases committed since the
// last scrape.
func (c *stateCollector) tailEvents(st *raftfsm.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		for {
			evs := st.Events("", c.cursor, maxTail)
			if len(evs) == 0 {
				return
			}
			c.cursor = evs[len(evs)-1].GetSeq()
		}
	}
	for _, e := range st.Events("", c.cursor, maxTail) {
		c.cursor = e.GetSeq()
		kind := e.GetKind()
		switch {
		case strings.HasPrefix(kind, "gate."):
			c.m.gateEvals.WithLabelValues(e.GetEvidence()["gate"], strings.TrimPrefix(kind, "gate.")).Inc()
		case kind == "phase.rehearsed":
			ms, err := strconv.ParseInt(e.GetEvidence()["rollback_ms"], 10, 64)
			if r := st.Release(e.GetReleaseId()); r != nil && err == nil && ms >= 0 {
				c.m.rehearsals.WithLabelValues(r.GetSpec().GetApp(), e.GetEvidence()["verdict"]).Observe(float64(ms) / 1000)
			}
		case kind == "phase.verified" || kind == "phase.failed":
			r := st.Release(e.GetReleaseId())
			if r == nil || int(e.GetPhase()) >= len(r.GetPhases()) {
				continue
			}
			p := r.GetPhases()[e.GetPhase()]
			if p.GetStartedUnixNano() > 0 && e.GetTimeUnixNano() >= p.GetStartedUnixNano() {
				d := time.Duration(e.GetTimeUnixNano() - p.GetStartedUnixNano())
				c.m.phaseDur.WithLabelValues(r.GetSpec().GetApp(), strings.TrimPrefix(kind, "phase.")).Observe(d.Seconds())
			}
		}
	}
}

// lowerState turns RELEASE_STATE_ROLLED_BACK into "rolled_back" for
// label values.
func lowerState(e fmt.Stringer) string {
	n := e.String()
	if _, after, ok := strings.Cut(n, "STATE_"); ok {
		n = after
	}
	return strings.ToLower(n)
}

// count is the number of open agent sessions.
func (r *agentRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}
