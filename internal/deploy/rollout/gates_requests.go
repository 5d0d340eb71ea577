package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// bakeWindow is the span the bake gates read: from the start of the bake
// (or of the phase, if later) to the bake deadline or now, whichever is
// first.
func (o *Orchestrator) bakeWindow(p *rollwavev1.Phase) (from, to time.Time) {
	to = time.Unix(0, p.GetBakeDeadlineUnixNano())
	if now := o.now(); now.Before(to) {
		to = now
	}
	from = sattime.Add(to, -sattime.Millis(p.GetBakeMs()))
	if st := time.Unix(0, p.GetStartedUnixNano()); p.GetBakeMs() <= 0 || from.Before(st) {
		from = st
	}
	return from, to
}

// requestWindow is the span the request gates read: the bake window,
// except on a leader that took over after the bake started. The proxies'
// counts live in leader memory, so such a leader has seen only the
// requests since its start; it reads a window of the bake's length from
// its own start instead, and ready is false until that has passed (later
// than the deadline: waiting is safe, while judging a sliver of traffic
// would pause the release as inconclusive after every failover).
func (o *Orchestrator) requestWindow(p *rollwavev1.Phase) (from, to time.Time, ready bool) {
	from, to = o.bakeWindow(p)
	o.mu.Lock()
	enabled := o.enabledAt
	o.mu.Unlock()
	if !enabled.After(from) {
		return from, to, true
	}
	length := time.Unix(0, p.GetBakeDeadlineUnixNano()).Sub(from)
	end := enabled.Add(length)
	if now := o.now(); now.Before(end) {
		return enabled, now, false
	}
	return enabled, end, true
}

// requestGatesOn says whether any gate reads the proxies' counts.
func requestGatesOn(r *rollwavev1.Release) bool {
	g := r.GetSpec().GetGates()
	return g.GetMaxErrorRate() > 0 || g.GetMaxLatencyP99Ms() > 0 ||
		(g.GetBaseline() == "compare" && comparesRequests(r))
}

// comparesRequests says whether the baseline comparison covers requests:
// only behind the HTTP proxy. A TCP proxy's "latency" is connection
// lifetime, which says little about users, and specs written before
// traffic.protocol existed keep the comparison they were started with
// (CPU and RSS) instead of pausing on a service with little traffic.
func comparesRequests(r *rollwavev1.Release) bool {
	t := r.GetSpec().GetTraffic()
	return t.GetMode() == "proxy" && t.GetProtocol() == "http"
}

func windowText(from, to time.Time) string {
	return fmt.Sprintf("%s..%s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
}

// defaultMinRequests is spec.DefaultMinRequests (rollout does not import
// spec): the floor for specs stored before gates.min_requests existed.
const defaultMinRequests = 200

// minRequests is gates.min_requests, or its default.
func minRequests(g *rollwavev1.GatesSpec) uint64 {
	if n := g.GetMinRequests(); n > 0 {
		return uint64(n)
	}
	return defaultMinRequests
}

// phaseRequests adds up, over the window, what the traffic proxies of
// hosts measured on slots running version (want) or other versions
// (!want); perHost holds "errors/requests" per host with any traffic.
func (o *Orchestrator) phaseRequests(hosts []string, app, version string, want bool, from, to time.Time) (total health.RequestStats, perHost []string) {
	for _, h := range slices.Sorted(slices.Values(hosts)) {
		st := o.samples.requests(h, app, version, want, from, to)
		if st.Requests > 0 {
			perHost = append(perHost, fmt.Sprintf("%s=%d/%d", h, st.Errors, st.Requests))
		}
		total.Merge(&st)
	}
	return total, perHost
}

// requestGates reads max_error_rate and max_latency_p99 over the bake
// window from the traffic proxies of the phase's healthy hosts, pooled:
// errors (5xx, upstream connect errors and timeouts) over requests, and
// the p99 of the merged latency histograms (the upper edge of its bucket,
// so never read low). Fewer than min_requests requests is inconclusive,
// never a pass. A limit of 0 turns a gate off.
func (o *Orchestrator) requestGates(r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) []gateResult {
	g := r.GetSpec().GetGates()
	if g.GetMaxErrorRate() <= 0 && g.GetMaxLatencyP99Ms() <= 0 {
		return nil
	}
	from, to, _ := o.requestWindow(p)
	return o.requestGatesIn(r, views, from, to)
}

// requestGatesIn is requestGates over the window from..to (the bake's, or
// the trailing window of a post_rollout watch).
func (o *Orchestrator) requestGatesIn(r *rollwavev1.Release, views []hostView, from, to time.Time) []gateResult {
	g := r.GetSpec().GetGates()
	app, version := r.GetSpec().GetApp(), r.GetSpec().GetVersion()
	hosts := hostsWhere(views, func(v hostView) bool { return v.status == hostHealthy })
	total, perHost := o.phaseRequests(hosts, app, version, true, from, to)
	need := minRequests(g)
	evidence := func() map[string]string {
		return map[string]string{
			"requests": fmt.Sprint(total.Requests), "errors": fmt.Sprint(total.Errors), "upstream_errors": fmt.Sprint(total.UpstreamErrors),
			"min_requests": fmt.Sprint(need), "hosts": strings.Join(hosts, ","), "per_host": strings.Join(perHost, ","),
			"window": windowText(from, to),
		}
	}
	var out []gateResult
	if limit := g.GetMaxErrorRate(); limit > 0 {
		rate := total.ErrorRate()
		res := gateResult{Reading: health.Reading{Gate: "max_error_rate", Value: rate, Limit: limit}, evidence: evidence()}
		res.evidence["error_rate"] = fmtFloat(rate)
		switch {
		case total.Requests < need:
			res.inconclusive = true
			res.Detail = fmt.Sprintf("max_error_rate: too little traffic to judge (inconclusive): %d requests on %d host(s), need %d", total.Requests, len(hosts), need)
		case rate <= limit:
			res.Passed = true
			res.Detail = fmt.Sprintf("max_error_rate: %d of %d requests failed (%.3g%%) <= %.3g%%", total.Errors, total.Requests, 100*rate, 100*limit)
		default:
			res.Detail = fmt.Sprintf("max_error_rate: %d of %d requests failed (%.3g%%) > %.3g%%", total.Errors, total.Requests, 100*rate, 100*limit)
		}
		out = append(out, res)
	}
	if ms := g.GetMaxLatencyP99Ms(); ms > 0 {
		limit := time.Duration(ms) * time.Millisecond
		timed := total.Latency.Count()
		p99 := total.Latency.Quantile(0.99)
		res := gateResult{Reading: health.Reading{Gate: "max_latency_p99", Value: float64(p99) / 1e6, Limit: float64(ms)}, evidence: evidence()}
		res.evidence["timed_requests"] = fmt.Sprint(timed)
		res.evidence["p50_ms"] = fmtFloat(float64(total.Latency.Quantile(0.5)) / 1e6)
		res.evidence["p99_ms"] = fmtFloat(float64(p99) / 1e6)
		switch {
		case timed < need:
			res.inconclusive = true
			res.Detail = fmt.Sprintf("max_latency_p99: too little traffic to judge (inconclusive): %d timed requests on %d host(s), need %d", timed, len(hosts), need)
		case p99 <= limit:
			res.Passed = true
			res.Detail = fmt.Sprintf("max_latency_p99: p99 %s over %d requests <= %s", p99.Round(10*time.Microsecond), timed, limit)
		default:
			res.Detail = fmt.Sprintf("max_latency_p99: p99 %s over %d requests > %s", p99.Round(10*time.Microsecond), timed, limit)
		}
		out = append(out, res)
	}
	return out
}

// baselineRequestGates extends the baseline comparison to what users
// feel, when the agents' HTTP proxy carries the app's traffic: the phase's
// new-version hosts against old-version peers (same cells, else the
// fleet), error rate by a one-sided two-proportion z-test (Fisher's exact
// test for few errors) and latency by a one-sided Mann-Whitney U test on
// the merged histograms. Fewer than min_requests on either side is
// inconclusive.
func (o *Orchestrator) baselineRequestGates(r *rollwavev1.Release, p *rollwavev1.Phase, canaryHosts, sameCell, fleet []string) []gateResult {
	if !comparesRequests(r) {
		return nil
	}
	g := r.GetSpec().GetGates()
	app, version := r.GetSpec().GetApp(), r.GetSpec().GetVersion()
	from, to, _ := o.requestWindow(p)
	need := minRequests(g)
	canary, canaryPer := o.phaseRequests(canaryHosts, app, version, true, from, to)
	scope, baseHosts := "cells", sameCell
	base, basePer := o.phaseRequests(baseHosts, app, version, false, from, to)
	if base.Requests < need && len(fleet) > len(sameCell) {
		scope, baseHosts = "fleet", fleet
		base, basePer = o.phaseRequests(baseHosts, app, version, false, from, to)
	}
	cfg := health.BaselineConfig{MinSamples: int(min(need, 1<<31-1)), HigherIsWorse: true, MinEffect: o.cfg.BaselineMinEffect}
	common := func() map[string]string {
		return map[string]string{
			"canary_requests": fmt.Sprint(canary.Requests), "baseline_requests": fmt.Sprint(base.Requests), "min_requests": fmt.Sprint(need),
			"canary_hosts": strings.Join(canaryHosts, ","), "baseline_hosts": strings.Join(baseHosts, ","), "baseline_scope": scope,
			"canary_per_host": strings.Join(canaryPer, ","), "baseline_per_host": strings.Join(basePer, ","),
			"window": windowText(from, to), "alpha": fmtFloat(health.DefaultAlpha), "min_effect": fmtFloat(cfg.MinEffect),
		}
	}
	er := health.CompareErrorRates(canary.Errors, canary.Requests, base.Errors, base.Requests, cfg)
	erg := gateResult{
		Reading: health.Reading{Gate: "baseline.error_rate", Value: er.CanaryRate, Limit: er.BaselineRate,
			Passed: er.Verdict == health.Pass, Detail: "baseline error_rate: " + er.Detail},
		inconclusive: er.Verdict == health.Inconclusive,
		evidence:     common(),
	}
	for k, v := range map[string]string{"verdict": er.Verdict.String(), "test": er.Test, "p": fmtFloat(er.P),
		"canary_errors": fmt.Sprint(er.CanaryErrors), "baseline_errors": fmt.Sprint(er.BaselineErrors),
		"canary_rate": fmtFloat(er.CanaryRate), "baseline_rate": fmtFloat(er.BaselineRate)} {
		erg.evidence[k] = v
	}
	lcfg := cfg
	lcfg.MinAbsEffect = float64(o.cfg.BaselineLatencyFloor) / float64(time.Millisecond)
	lr := health.CompareLatency(&canary.Latency, &base.Latency, lcfg)
	lrg := gateResult{
		Reading: health.Reading{Gate: "baseline.latency", Value: lr.CanaryMedian, Limit: lr.BaselineMedian,
			Passed: lr.Verdict == health.Pass, Detail: "baseline latency: " + lr.Detail},
		inconclusive: lr.Verdict == health.Inconclusive,
		evidence:     common(),
	}
	for k, v := range map[string]string{"verdict": lr.Verdict.String(), "test": "mann-whitney", "p": fmtFloat(lr.P), "u": fmtFloat(lr.U),
		"canary_median_ms": fmtFloat(lr.CanaryMedian), "baseline_median_ms": fmtFloat(lr.BaselineMedian),
		"canary_p99_ms": fmtFloat(float64(canary.Latency.Quantile(0.99)) / 1e6), "baseline_p99_ms": fmtFloat(float64(base.Latency.Quantile(0.99)) / 1e6),
		"canary_timed": fmt.Sprint(lr.N1), "baseline_timed": fmt.Sprint(lr.N2), "min_slowdown_ms": fmtFloat(lcfg.MinAbsEffect)} {
		lrg.evidence[k] = v
	}
	out := []gateResult{erg, lrg}
	for i := range out {
		if out[i].inconclusive && !strings.Contains(out[i].Detail, "inconclusive") {
			out[i].Detail += " (inconclusive)"
		}
	}
	return out
}
