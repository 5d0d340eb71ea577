package rollout

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/health/extgate"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// metricGateRun is a release's external gates on this leader: built once
// from the spec, and when each was last read in which phase. Leader
// memory only: a new leader reads every gate at once.
type metricGateRun struct {
	gates []*extgate.Gate
	// buildErr is why the gates could not be built (a credential file
	// outside the directory, no directory configured, a URL outside
	// gate_url_prefixes): the reading is then inconclusive.
	buildErr error
	built    bool
	// lastRead is keyed by phase index and gate name.
	lastRead map[string]time.Time
}

func (o *Orchestrator) metricGatesOf(rn *run, r *rollwavev1.Release) *metricGateRun {
	mg := &rn.metric
	if mg.lastRead == nil {
		mg.lastRead = map[string]time.Time{}
	}
	if mg.built {
		return mg
	}
	// Built again at the next reading after an error: the operator may
	// fix a credential file and resume.
	mg.gates, mg.buildErr = nil, nil
	for _, spec := range r.GetSpec().GetGates().GetMetricGates() {
		g, err := extgate.New(spec, o.cfg.MetricGates)
		if err != nil {
			mg.gates, mg.buildErr = nil, err
			return mg
		}
		mg.gates = append(mg.gates, g)
	}
	mg.built = true
	return mg
}

// readMetricGates reads, side by side, the external gates that are due
// (all of them when due is nil) for phase p and returns their readings.
// It blocks for at most the slowest gate's MaxDuration.
func (o *Orchestrator) readMetricGates(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, due func(g *extgate.Gate, last time.Time) bool) []gateResult {
	mg := o.metricGatesOf(rn, r)
	if mg.buildErr != nil {
		return []gateResult{{
			Reading:      health.Reading{Gate: "metric_gates", Value: math.NaN(), Limit: math.NaN(), Detail: "external gates unusable on this leader: " + mg.buildErr.Error()},
			inconclusive: true,
			evidence:     map[string]string{"error": mg.buildErr.Error()},
		}}
	}
	c := extgate.Context{Release: r.GetId(), App: r.GetSpec().GetApp(), Version: r.GetSpec().GetVersion(), Phase: p.GetIndex(),
		Hosts: p.GetHosts(), Cells: p.GetCells()}
	var todo []*extgate.Gate
	now := o.now()
	for _, g := range mg.gates {
		key := fmt.Sprintf("%d/%s", p.GetIndex(), g.Name())
		if due != nil && !due(g, mg.lastRead[key]) {
			continue
		}
		mg.lastRead[key] = now
		todo = append(todo, g)
	}
	results := make([]gateResult, len(todo))
	var wg sync.WaitGroup
	for i, g := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := g.Read(ctx, c)
			results[i] = gateResult{
				Reading:      health.Reading{Gate: res.Gate, Value: res.Value, Limit: res.Limit, Passed: res.Verdict == health.Pass, Detail: res.Detail},
				inconclusive: res.Verdict == health.Inconclusive,
				evidence:     res.Evidence,
			}
		}()
	}
	wg.Wait()
	for _, g := range results {
		o.log.Debug("metric gate read", "release_id", r.GetId(), "phase", p.GetIndex(), "gate", g.Gate, "detail", g.Detail)
	}
	return results
}

// watchMetricGates reads the external gates that are due while phase p
// bakes: a failing reading fails the phase at once, an inconclusive one
// pauses the release (an unreachable metric store is no evidence that the
// new version is fine). Passing readings are not written; the bake's
// decision carries the final reading of every gate.
func (o *Orchestrator) watchMetricGates(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, budgets []gateResult) error {
	if len(r.GetSpec().GetGates().GetMetricGates()) == 0 {
		return nil
	}
	now := o.now()
	results := o.readMetricGates(ctx, rn, r, p, func(g *extgate.Gate, last time.Time) bool {
		return last.IsZero() || now.Sub(last) >= g.Interval()
	})
	if ctx.Err() != nil {
		return ctx.Err() // leadership lost mid-reading: not evidence
	}
	if len(failedOf(results)) > 0 {
		return o.failPhase(ctx, r, p, append(append([]gateResult{}, budgets...), results...))
	}
	var inconclusive []string
	var evs []*rollwavev1.Event
	for _, g := range results {
		if g.inconclusive {
			inconclusive = append(inconclusive, g.Detail)
			evs = append(evs, gateEvent(r, p.GetIndex(), g))
		}
	}
	if len(inconclusive) == 0 {
		return nil
	}
	// Read again as soon as a human resumes.
	clear(rn.metric.lastRead)
	return o.setRelease(ctx, r, relPaused, fmt.Sprintf("phase %d external gate inconclusive during the bake, a human must decide (resume to read the gates again, promote -skip-bake, rollback or abort): %s",
		p.GetIndex(), strings.Join(inconclusive, "; ")), evs...)
}
