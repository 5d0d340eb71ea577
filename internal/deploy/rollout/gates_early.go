package rollout

import (
	"context"
	"fmt"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// earlyFailAlpha is how sure the bake's running reading of max_error_rate
// must be before it fails a phase ahead of its deadline: the one-sided
// binomial probability of seeing at least this many errors if the true
// error rate were exactly the limit. The gate is read again and again
// during a bake (peeking), so the bar is far stricter than a single
// test's 5 %: a version at the limit fails early in well under 1 in 1,000
// bakes, and a version clearly over it (10 % errors against 1 %) after a
// few dozen requests. Everything short of that waits for the deadline,
// where the plain reading over the whole bake decides.
const earlyFailAlpha = 0.001

// earlyReadEvery bounds how often a bake's request counts are summed
// (agents report every heartbeat, 2 s by default).
const earlyReadEvery = time.Second

// watchRequestGates reads max_error_rate during a bake and fails the
// phase before its deadline once the new version's errors are clearly
// above the limit (earlyFailAlpha), so a bad canary stops serving errors
// within seconds instead of for the whole bake. It returns true when it
// decided. Not read early: the latency gate (a p99 over a partial window
// says little) and the baseline comparisons (a peer comparison that is
// read repeatedly needs its own correction); they decide at the deadline.
func (o *Orchestrator) watchRequestGates(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView, budgets []gateResult) (bool, error) {
	g := r.GetSpec().GetGates()
	limit := g.GetMaxErrorRate()
	if limit <= 0 || limit >= 1 {
		return false, nil
	}
	now := o.now()
	if last, ok := rn.earlyRead[p.GetIndex()]; ok && now.Sub(last) < earlyReadEvery {
		return false, nil
	}
	rn.earlyRead[p.GetIndex()] = now
	// A leader that took over mid-bake reads the requests it has seen
	// since (requestWindow's window up to now).
	from, to, _ := o.requestWindow(p)
	hosts := hostsWhere(views, func(v hostView) bool { return v.status == hostHealthy })
	total, _ := o.phaseRequests(hosts, r.GetSpec().GetApp(), r.GetSpec().GetVersion(), true, from, to)
	need := minRequests(g)
	if total.Requests < need || total.Errors == 0 || total.ErrorRate() <= limit {
		return false, nil
	}
	pValue := binomialUpperTail(total.Errors, total.Requests, limit)
	if pValue >= earlyFailAlpha {
		return false, nil
	}
	var res []gateResult
	for _, gr := range o.requestGatesIn(r, views, from, to) {
		if gr.Gate != "max_error_rate" {
			continue
		}
		gr.evidence["early"] = "true"
		gr.evidence["p_value"] = fmt.Sprintf("%.3g", pValue)
		gr.evidence["alpha"] = fmt.Sprint(earlyFailAlpha)
		gr.Detail += fmt.Sprintf(" during the bake, %s before its deadline (p = %.2g that a version at the limit errs this often)",
			time.Unix(0, p.GetBakeDeadlineUnixNano()).Sub(now).Round(time.Second), pValue)
		res = append(res, gr)
	}
	if len(failedOf(res)) == 0 {
		return false, nil // the full reading disagrees (hosts changed): wait
	}
	return true, o.failPhase(ctx, r, p, append(append([]gateResult{}, budgets...), res...))
}

// binomialUpperTail is P(X ≥ k) for X ~ Binomial(n, p).
func binomialUpperTail(k, n uint64, p float64) float64 {
	if k == 0 {
		return 1
	}
	b := distuv.Binomial{N: float64(n), P: p}
	return b.Survival(float64(k) - 1)
}
