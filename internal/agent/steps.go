package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Weighted traffic steps (traffic.steps) are driven by the agent, on its
// own host, not by the leader. Like the bake monitor, they must keep
// working (and keep failing safe) when the control plane is away, and the
// best baseline for a step is the old slot on the same host, serving the
// same clients at the same moment: no fleet-wide view is needed. The
// swap's switch step applies the first weight; this loop moves it up.
// The host reports HEALTHY only once the weight is 100 (the bake monitor
// waits for that), so the leader's phase goes on deploying until every
// host has taken all of its traffic, and bakes and gates afterwards as
// for an atomic switch.

// stepCheckEvery is how often within a step the gate looks for a clear
// failure (a pass needs the whole step).
const stepCheckEvery = 4

// maxStepExtensions bounds an inconclusive step: it is extended by
// step_time at most this many times (so it lasts at most 5 × step_time),
// then the host fails — too little traffic to judge is not a pass.
const maxStepExtensions = 4

// defaultStepTime is spec.DefaultTrafficStepTime, for orders carrying no
// step_time.
const defaultStepTime = time.Minute

// stepGate holds what the proxy measured on each slot during one step.
type stepGate struct {
	newStats, oldStats health.RequestStats
}

// stepVerdict is a step gate's reading.
type stepVerdict struct {
	verdict  health.Verdict
	evidence string
}

// judge reads the step: the new slot against the old one on this host.
// Errors: the two-proportion (or Fisher) test, plus gates.max_error_rate
// when set; latency (http only, when gates.max_latency_p99 is set): the
// Mann-Whitney comparison on the histograms, plus the p99 limit. Fewer
// than gates.min_requests on either side is inconclusive.
func (g *stepGate) judge(spec *rollwavev1.ReleaseSpec, http bool) stepVerdict {
	gates := spec.GetGates()
	need := uint64(gates.GetMinRequests())
	if need == 0 {
		need = 200
	}
	n, o := &g.newStats, &g.oldStats
	cfg := health.BaselineConfig{MinSamples: int(min(need, 1<<30))}
	er := health.CompareErrorRates(n.Errors, n.Requests, o.Errors, o.Requests, cfg)
	ev := fmt.Sprintf("new %d/%d errors, old %d/%d errors; %s", n.Errors, n.Requests, o.Errors, o.Requests, er.Detail)
	if er.Verdict == health.Fail {
		return stepVerdict{health.Fail, ev}
	}
	if max := gates.GetMaxErrorRate(); max > 0 && n.Requests >= need && float64(n.Errors) > max*float64(n.Requests) {
		return stepVerdict{health.Fail, fmt.Sprintf("%s; new slot error rate %.3g%% above max_error_rate %.3g%%", ev, 100*float64(n.Errors)/float64(n.Requests), 100*max)}
	}
	if limitMs := gates.GetMaxLatencyP99Ms(); http && limitMs > 0 {
		lr := health.CompareLatency(&n.Latency, &o.Latency, health.BaselineConfig{MinSamples: cfg.MinSamples, MinEffect: 0.2, MinAbsEffect: 1})
		p99 := n.Latency.Quantile(0.99)
		ev = fmt.Sprintf("%s; latency: %s; new p99 %s (limit %s)", ev, lr.Detail, p99, sattime.Millis(limitMs))
		if lr.Verdict == health.Fail || (n.Latency.Count() >= need && p99 > sattime.Millis(limitMs)) {
			return stepVerdict{health.Fail, ev}
		}
	}
	return stepVerdict{er.Verdict, ev}
}

// runSteps moves generation gen's weight through traffic.steps, one gate
// per step, until 100; a failed gate (or one inconclusive for too long)
// asks for a revert, which points everything back at the old slot at
// once. It returns when the steps are done, the revert is asked for, or
// ctx ends (the bake stopped; a restarted agent resumes from the weight
// in the state file).
func (c *appCtl) runSteps(ctx context.Context, gen uint64, spec *rollwavev1.ReleaseSpec) {
	st, ok := c.a.mgr.AppState(c.app)
	if !ok || st.Split == nil || st.Generation != gen {
		return
	}
	steps := spec.GetTraffic().GetSteps()
	stepTime := sattime.Millis(spec.GetTraffic().GetStepTimeMs())
	if stepTime <= 0 {
		stepTime = defaultStepTime
	}
	if st.Split.Dark {
		next, ok := c.runDark(ctx, gen, spec, st)
		if !ok {
			return
		}
		if st, ok = c.a.mgr.AppState(c.app); !ok || st.Split == nil || st.Generation != gen || next == 100 {
			return // all traffic on the new slot, or no longer ours
		}
	}
	idx := slices.IndexFunc(steps, func(w int32) bool { return int(w) >= st.Split.Weight })
	if idx < 0 || len(steps) == 0 {
		idx = len(steps) - 1
	}
	log := c.log.With("generation", gen, "slot", st.Active, "old_slot", st.From)
	http := spec.GetTraffic().GetProtocol() == slot.ProtocolHTTP && spec.GetTraffic().GetMode() == "proxy"
	measured := spec.GetTraffic().GetMode() == "proxy"
	// Start each step with fresh counts.
	c.a.mgr.DrainStepStats(c.app)
	for weight := st.Split.Weight; weight < 100; {
		log.Info("traffic step", "weight", weight, "step_time", stepTime)
		v, ok := c.runStep(ctx, spec, st.Active, st.From, stepTime, measured, http)
		if !ok {
			return
		}
		if v.verdict != health.Pass {
			why := "failed"
			if v.verdict == health.Inconclusive {
				why = fmt.Sprintf("inconclusive after %s (5 × step_time)", (1+maxStepExtensions)*stepTime)
			}
			reason := fmt.Sprintf("traffic step %d%% %s: %s", weight, why, v.evidence)
			log.Warn("traffic step failed; sending all traffic back to the old slot", "weight", weight, "evidence", v.evidence)
			c.requestRevert(gen, reason)
			return
		}
		next := 100
		if idx+1 < len(steps) {
			idx++
			next = int(steps[idx])
		}
		log.Info("traffic step passed", "weight", weight, "next", next, "evidence", v.evidence)
		if err := c.a.mgr.SetWeight(ctx, c.app, gen, next); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.requestRevert(gen, fmt.Sprintf("traffic step %d%%: moving to %d%%: %v", weight, next, err))
			return
		}
		c.a.mgr.DrainStepStats(c.app)
		weight = next
	}
	log.Info("traffic steps done: all traffic on the new slot")
}

// runStep waits out one step and reads its gate: every step_time/4 for a
// clear failure, at step_time for a pass, extended while inconclusive up
// to maxStepExtensions times. With no proxy measuring (mode exec) the
// step only waits: the health checks and the leader's gates judge.
func (c *appCtl) runStep(ctx context.Context, spec *rollwavev1.ReleaseSpec, newSlot, oldSlot slot.Name, stepTime time.Duration, measured, http bool) (stepVerdict, bool) {
	clock := c.a.clock
	start := clock.Mono()
	end := sattime.Sum(start, stepTime)
	limit := sattime.Sum(start, time.Duration(1+maxStepExtensions)*stepTime)
	tick := time.NewTicker(max(stepTime/stepCheckEvery, 10*time.Millisecond))
	defer tick.Stop()
	var g stepGate
	for {
		select {
		case <-ctx.Done():
			return stepVerdict{}, false
		case <-tick.C:
		}
		if !measured {
			if clock.Mono() >= end {
				return stepVerdict{verdict: health.Pass, evidence: "no proxy measures this traffic mode; step waited " + stepTime.String()}, true
			}
			continue
		}
		if _, stats, ok := c.a.mgr.DrainStepStats(c.app); ok {
			if s := stats[newSlot]; s != nil {
				g.newStats.Merge(s)
			}
			if s := stats[oldSlot]; s != nil {
				g.oldStats.Merge(s)
			}
		}
		v := g.judge(spec, http)
		now := clock.Mono()
		switch {
		case v.verdict == health.Fail:
			return v, true
		case now < end:
		case v.verdict == health.Pass:
			return v, true
		case now >= limit:
			return v, true // inconclusive for too long
		}
	}
}

// stepping says whether generation gen still runs weighted steps (the
// new slot does not have all the traffic yet): it is not healthy then.
func (c *appCtl) stepping(gen uint64) bool {
	st, ok := c.a.mgr.AppState(c.app)
	return ok && st.Generation == gen && st.Split != nil
}
