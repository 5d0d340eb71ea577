package agent

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// promMetrics are the agent's Prometheus metrics, in a registry of its own
// (never the global one: in-process tests run many agents). What /metrics
// serves is this registry; other parts of the agent (the traffic proxy's
// per-slot requests, errors and latency) register their collectors on it
// through Agent.Registry.
type promMetrics struct {
	reg      *prometheus.Registry
	stepDur  *prometheus.HistogramVec
	reverts  *prometheus.CounterVec
	checks   *prometheus.CounterVec
	checkDur *prometheus.HistogramVec
	// rehearsal is the measured rollback time of rollback rehearsals.
	rehearsal *prometheus.HistogramVec
	// requests are the traffic proxy's per-slot totals (prom_requests.go).
	requests *requestMetrics
	// isolated is set when the agent reverted on its own for lack of a
	// leader (reverted_isolated) and cleared when a session opens again.
	isolated atomic.Bool
}

var (
	descConnected = prometheus.NewDesc("rollwave_agent_connected",
		"1 while a session with the coordinator leader is open.", nil, nil)
	descAckAge = prometheus.NewDesc("rollwave_agent_leader_ack_age_seconds",
		"Seconds since the last heartbeat ack from a leader (monotonic clock; since start when there was none).", nil, nil)
	descSlotInfo = prometheus.NewDesc("rollwave_agent_slot_info",
		"1 for each app slot with a version on this host; active=\"true\" for the slot serving traffic.", []string{"app", "slot", "version", "active"}, nil)
	descHolding = prometheus.NewDesc("rollwave_agent_holding",
		"1 for each app whose bake is held through a control-plane outage.", []string{"app"}, nil)
)

func newPromMetrics(a *Agent) *promMetrics {
	p := &promMetrics{
		reg: prometheus.NewRegistry(),
		stepDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_agent_step_duration_seconds",
			Help:    "Duration of each step of a swap or revert on a slot (op = swap, revert, or finalize for its drain hook; step as in the slot state file, lifecycle hooks by their name), by result.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"op", "step", "result"}),
		reverts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollwave_agent_reverts_total",
			Help: "Reverts this agent carried out, by reason: ordered (by the leader), local_health (the bake's own checks failed), isolated (no leader, peers reachable or none), control_plane_loss (on_control_plane_loss = revert).",
		}, []string{"reason"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollwave_agent_health_checks_total",
			Help: "Health check runs, by app, check name and result (pass, fail).",
		}, []string{"app", "check", "result"}),
		checkDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_agent_health_check_duration_seconds",
			Help:    "Latency of health check runs, by app and check name.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"app", "check"}),
		rehearsal: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rollwave_agent_rehearsal_rollback_seconds",
			Help:    "Measured rollback time of rollback rehearsals (rollback.rehearse): from the start of the revert to the old slot healthy and serving, by app.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600},
		}, []string{"app"}),
		requests: newRequestMetrics(),
	}
	p.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		p.stepDur, p.reverts, p.checks, p.checkDur, p.rehearsal,
		&agentCollector{a: a},
	)
	return p
}

// Registry is the agent's metrics registry: what /metrics serves. Other
// parts (the traffic proxy's per-slot RED metrics) register on it.
func (a *Agent) Registry() *prometheus.Registry { return a.prom.reg }

// onStep is the slot manager's step hook (slot.ManagerConfig.OnStep).
func (p *promMetrics) onStep(_ string, op, step string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	p.stepDur.WithLabelValues(op, step, result).Observe(d.Seconds())
}

// onProgress counts reverts from the assignment states the slot manager
// reports, and notes an isolated revert for readiness.
func (p *promMetrics) onProgress(st rollwavev1.AssignmentState, reason string) {
	switch st {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
		p.isolated.Store(true)
		if strings.Contains(reason, "on_control_plane_loss") {
			p.reverts.WithLabelValues("control_plane_loss").Inc()
		} else {
			p.reverts.WithLabelValues("isolated").Inc()
		}
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED:
		// The agent's own bake reverts say "bake: …" (bake.go); anything
		// else was ordered by the leader.
		if strings.HasPrefix(reason, "bake") {
			p.reverts.WithLabelValues("local_health").Inc()
		} else {
			p.reverts.WithLabelValues("ordered").Inc()
		}
	}
}

// timeChecks wraps an app's health checks so each run is counted and
// timed.
func (p *promMetrics) timeChecks(app string, cs []health.CheckWithInterval) []health.CheckWithInterval {
	out := make([]health.CheckWithInterval, len(cs))
	for i, c := range cs {
		out[i] = health.CheckWithInterval{Check: &timedCheck{Check: c.Check, app: app, p: p}, Interval: c.Interval}
	}
	return out
}

type timedCheck struct {
	health.Check
	app string
	p   *promMetrics
}

func (t *timedCheck) Run(ctx context.Context) error {
	start := time.Now()
	err := t.Check.Run(ctx)
	name := t.Check.Name()
	t.p.checkDur.WithLabelValues(t.app, name).Observe(time.Since(start).Seconds())
	result := "pass"
	if err != nil {
		result = "fail"
	}
	t.p.checks.WithLabelValues(t.app, name, result).Inc()
	return err
}

// agentCollector reads contact and slot state at scrape time.
type agentCollector struct{ a *Agent }

// Describe sends nothing: an unchecked collector, since the slot manager
// it reads does not exist yet when the registry is built.
func (c *agentCollector) Describe(chan<- *prometheus.Desc) {}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	connected := 0.0
	if a.Connected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected)
	age := time.Duration(int64(a.clock.Mono()) - a.lastAck.Load())
	ch <- prometheus.MustNewConstMetric(descAckAge, prometheus.GaugeValue, max(0, age.Seconds()))
	inSlots := map[string]string{}
	for _, app := range a.mgr.Apps() {
		st, ok := a.mgr.AppState(app)
		if !ok {
			continue
		}
		for _, n := range []slot.Name{slot.Blue, slot.Green} {
			ss := st.Slots[n]
			if ss == nil || ss.Version == "" {
				continue
			}
			inSlots[app+"/"+string(n)] = ss.Version
			active := "false"
			if st.Active == n {
				active = "true"
			}
			ch <- prometheus.MustNewConstMetric(descSlotInfo, prometheus.GaugeValue, 1, app, string(n), ss.Version, active)
		}
		if a.Holding(app) {
			ch <- prometheus.MustNewConstMetric(descHolding, prometheus.GaugeValue, 1, app)
		}
	}
	a.prom.requests.keepOnly(inSlots)
	a.prom.requests.collect(ch)
}

// ready is /v1/ready: a session with the leader is open, or the agent is
// deliberately on its own — holding a bake through a control-plane
// outage, or reverted for isolation — which is the expected state then,
// not a fault of the agent.
func (a *Agent) ready() error {
	if a.Connected() {
		a.prom.isolated.Store(false)
		return nil
	}
	for _, app := range a.mgr.Apps() {
		if a.Holding(app) {
			return nil
		}
	}
	if a.prom.isolated.Load() {
		return nil
	}
	return errors.New("no session with the coordinator leader (starting, or the leader is unreachable)")
}
