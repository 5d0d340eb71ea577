package rollout

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// gateResult is one gate reading. inconclusive readings are not passes:
// they pause the release.
type gateResult struct {
	health.Reading
	inconclusive bool
	evidence     map[string]string
}

func failedOf(gs []gateResult) []gateResult {
	var out []gateResult
	for _, g := range gs {
		if !g.Passed && !g.inconclusive {
			out = append(out, g)
		}
	}
	return out
}

// gateEvent is the audit record of a reading: gate.passed, gate.failed or
// gate.inconclusive, with the value, the limit and the detail as evidence.
func gateEvent(r *rollwavev1.Release, phase int32, g gateResult) *rollwavev1.Event {
	kind := "gate.passed"
	switch {
	case g.inconclusive:
		kind = "gate.inconclusive"
	case !g.Passed:
		kind = "gate.failed"
	}
	evidence := map[string]string{
		"gate": g.Gate, "value": fmtFloat(g.Value), "limit": fmtFloat(g.Limit), "detail": g.Detail,
	}
	for k, v := range g.evidence {
		evidence[k] = v
	}
	return ev(r, phase, kind, fmt.Sprintf("phase %d %s: %s", phase, g.Gate, g.Detail), evidence)
}

func fmtFloat(v float64) string {
	if math.IsNaN(v) {
		return "none"
	}
	return fmt.Sprintf("%.6g", v)
}

func hostsWhere(views []hostView, keep func(hostView) bool) []string {
	var out []string
	for _, v := range views {
		if keep(v) {
			out = append(out, v.host)
		}
	}
	return out
}

// budgetGates: failed hosts against max_failed_hosts, unreachable hosts
// against max_unreachable. A host that reverted on its own because it was
// cut off (reverted_isolated), or whose deadline passed while it was
// unreachable, is unreachable, not failed: a flapping link says nothing
// about the release.
func (o *Orchestrator) budgetGates(r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) []gateResult {
	g := r.GetSpec().GetGates()
	failed := hostsWhere(views, func(v hostView) bool { return v.status == hostFailed })
	unreachable := hostsWhere(views, func(v hostView) bool { return v.unreachable })
	fr := gateResult{Reading: health.EvalBudget("max_failed_hosts", len(failed), len(views), health.QuantityFromProto(g.GetMaxFailedHosts()))}
	fr.evidence = map[string]string{"hosts": strings.Join(failed, ",")}
	for _, v := range views {
		if v.status == hostFailed {
			fr.evidence["host."+v.host] = v.reason
		}
	}
	ur := gateResult{Reading: health.EvalBudget("max_unreachable", len(unreachable), len(views), health.QuantityFromProto(g.GetMaxUnreachable()))}
	ur.evidence = map[string]string{"hosts": strings.Join(unreachable, ",")}
	var isolated []string
	for _, v := range views {
		if v.unreachable {
			ur.evidence["host."+v.host] = v.reason
		}
		if !v.isolatedAt.IsZero() {
			isolated = append(isolated, v.host)
			ur.evidence["host."+v.host+".reverted_isolated_at"] = timeRFC(v.isolatedAt)
		}
	}
	if len(isolated) > 0 {
		ur.evidence["reverted_isolated"] = strings.Join(isolated, ",")
	}
	return []gateResult{fr, ur}
}

// thresholdGates reads max_cpu_percent (the new slot's CPU), max_mem_percent
// (host memory) and max_restarts (the new slot's restarts) from the latest
// heartbeat of each healthy host: the worst host decides. A limit of 0 turns
// a gate off. No heartbeat from any host is inconclusive.
func (o *Orchestrator) thresholdGates(r *rollwavev1.Release, views []hostView) []gateResult {
	g := r.GetSpec().GetGates()
	app, version := r.GetSpec().GetApp(), r.GetSpec().GetVersion()
	type metric struct {
		name  string
		limit float64
		read  func(hb *rollwavev1.Heartbeat) (float64, bool)
	}
	slotOf := func(hb *rollwavev1.Heartbeat) *rollwavev1.SlotMetrics {
		for _, s := range hb.GetSlots() {
			if s.GetApp() == app && s.GetVersion() == version {
				return s
			}
		}
		return nil
	}
	metrics := []metric{
		{"max_cpu_percent", g.GetMaxCpuPercent(), func(hb *rollwavev1.Heartbeat) (float64, bool) {
			s := slotOf(hb)
			return s.GetCpuPercent(), s != nil
		}},
		{"max_mem_percent", g.GetMaxMemPercent(), func(hb *rollwavev1.Heartbeat) (float64, bool) {
			return hb.GetHost().GetMemPercent(), hb.GetHost() != nil
		}},
		{"max_restarts", float64(g.GetMaxRestarts()), func(hb *rollwavev1.Heartbeat) (float64, bool) {
			s := slotOf(hb)
			return float64(s.GetRestarts()), s != nil
		}},
	}
	var out []gateResult
	for _, m := range metrics {
		if m.limit <= 0 {
			continue
		}
		worst, worstHost := math.NaN(), ""
		var missing []string
		for _, v := range views {
			if v.status != hostHealthy {
				continue
			}
			hb, _, ok := o.agents.Heartbeat(v.host)
			val, have := 0.0, false
			if ok {
				val, have = m.read(hb)
			}
			if !have {
				missing = append(missing, v.host)
				continue
			}
			if math.IsNaN(worst) || val > worst {
				worst, worstHost = val, v.host
			}
		}
		res := gateResult{Reading: health.EvalThreshold(m.name, worst, m.limit),
			evidence: map[string]string{"worst_host": worstHost, "no_data": strings.Join(missing, ",")}}
		if math.IsNaN(worst) {
			res.inconclusive = true
			res.Detail = fmt.Sprintf("%s: no metrics from any healthy host (limit %g)", m.name, m.limit)
		}
		out = append(out, res)
	}
	return out
}

// baselineMetrics are compared between new and old version hosts; for
// both, higher is worse.
var baselineMetrics = []string{health.MetricCPUPercent, health.MetricRSSBytes}

// baselineGates compares, for each sampled metric, the healthy hosts of
// the phase running the new version with hosts of the same cells still on
// the old one, over the bake window, with a one-sided Mann-Whitney U test.
// When the phase's cells have no host left on the old version, the
// comparison widens to old-version hosts in every cell (recorded as
// baseline_scope=fleet). Too few samples on either side is inconclusive.
func (o *Orchestrator) baselineGates(r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) []gateResult {
	g := r.GetSpec().GetGates()
	if g.GetBaseline() != "compare" {
		return nil
	}
	app, version := r.GetSpec().GetApp(), r.GetSpec().GetVersion()
	from, to := o.bakeWindow(p)
	canaryHosts := hostsWhere(views, func(v hostView) bool { return v.status == hostHealthy })
	inRelease := map[string]bool{}
	for _, a := range o.state.ReleaseAssignments(r.GetId()) {
		inRelease[a.GetHost()] = true
	}
	cells := map[string]bool{}
	for _, c := range p.GetCells() {
		cells[c] = true
	}
	var sameCell, fleet []string
	for _, h := range o.state.Hosts() {
		if inRelease[h.GetId()] {
			continue
		}
		fleet = append(fleet, h.GetId())
		if cells[h.GetCell()] {
			sameCell = append(sameCell, h.GetId())
		}
	}
	minSamples := int(g.GetBaselineMinSamples())
	if minSamples <= 0 {
		minSamples = health.DefaultMinSamples
	}
	cfg := health.BaselineConfig{MinSamples: minSamples, HigherIsWorse: true, MinEffect: o.cfg.BaselineMinEffect}
	var out []gateResult
	for _, metric := range baselineMetrics {
		var canary []float64
		for _, h := range canaryHosts {
			canary = append(canary, o.samples.values(h, app, metric, version, true, from, to)...)
		}
		scope, baseHosts := "cells", sameCell
		base := o.collect(baseHosts, app, metric, version, from, to)
		if len(base) < minSamples && len(fleet) > len(sameCell) {
			scope, baseHosts = "fleet", fleet
			base = o.collect(baseHosts, app, metric, version, from, to)
		}
		res := health.CompareBaseline(canary, base, cfg)
		gr := gateResult{
			Reading: health.Reading{Gate: "baseline." + metric, Value: res.CanaryMedian, Limit: res.BaselineMedian,
				Passed: res.Verdict == health.Pass, Detail: fmt.Sprintf("baseline %s: %s", metric, res.Detail)},
			inconclusive: res.Verdict == health.Inconclusive,
			evidence: map[string]string{
				"verdict": res.Verdict.String(), "p": fmtFloat(res.P), "u": fmtFloat(res.U),
				"canary_samples": fmt.Sprint(res.N1), "baseline_samples": fmt.Sprint(res.N2), "min_samples": fmt.Sprint(minSamples),
				"canary_median": fmtFloat(res.CanaryMedian), "baseline_median": fmtFloat(res.BaselineMedian),
				"canary_hosts": strings.Join(canaryHosts, ","), "baseline_hosts": strings.Join(baseHosts, ","),
				"baseline_scope": scope, "window": windowText(from, to),
			},
		}
		if gr.inconclusive && !strings.Contains(gr.Detail, "inconclusive") {
			gr.Detail += " (inconclusive)"
		}
		out = append(out, gr)
	}
	return append(out, o.baselineRequestGates(r, p, canaryHosts, sameCell, fleet)...)
}

func (o *Orchestrator) collect(hosts []string, app, metric, version string, from, to time.Time) []float64 {
	var out []float64
	for _, h := range slices.Sorted(slices.Values(hosts)) {
		out = append(out, o.samples.values(h, app, metric, version, false, from, to)...)
	}
	return out
}
