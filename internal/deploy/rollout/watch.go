package rollout

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/health/extgate"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The watch after the rollout (post_rollout.watch): once the last phase
// verified, a release with a watch goes to watching instead of finalizing.
// Its hosts keep the old slot (nobody orders finalize), so a gate failure
// in the window, or an operator's rollback, moves the release to
// rolling_back and the ordinary rollback reverts every host by a local
// slot swap. At the window's end (watch_until, stored in raft: a new
// leader continues the same window) the hosts are finalized, which stops
// the old slots, and the release succeeds.

const relWatching = rollwavev1.ReleaseState_RELEASE_STATE_WATCHING

// Bounds of the trailing window the request gates read during a watch:
// as long as the last phase's bake, within these.
const (
	minWatchRequestWindow = 10 * time.Second
	maxWatchRequestWindow = 10 * time.Minute
)

// watchOf returns a release's post_rollout.watch; 0 means none. A
// convergence release never watches: it rolls drifted hosts to a release
// whose watch already ran.
func watchOf(r *rollwavev1.Release) time.Duration {
	if r.GetConvergeOf() != "" {
		return 0
	}
	return sattime.Millis(r.GetSpec().GetPostRollout().GetWatchMs())
}

// watchSpan returns the start and end of a watching release's window.
func watchSpan(r *rollwavev1.Release) (start, until time.Time) {
	until = time.Unix(0, r.GetWatchUntilUnixNano())
	return sattime.Add(until, -watchOf(r)), until
}

// watchRequestWindow is the length of the trailing window the request
// gates read during the watch: the last phase's bake, within bounds, so a
// burst of failures weighs as it did during the bakes.
func watchRequestWindow(r *rollwavev1.Release) time.Duration {
	var bake time.Duration
	if n := len(r.GetPhases()); n > 0 {
		bake = sattime.Millis(r.GetPhases()[n-1].GetBakeMs())
	}
	return min(max(bake, minWatchRequestWindow), maxWatchRequestWindow)
}

// startWatch moves a release whose last phase verified to watching, with
// the window's end in the same entry.
func (o *Orchestrator) startWatch(ctx context.Context, r *rollwavev1.Release) error {
	watch := watchOf(r)
	now := o.now()
	until := sattime.Add(now, watch)
	reason := fmt.Sprintf("every phase verified; watching for %s until %s with the old slots kept %s: a gate failure or 'rollwave release rollback %s' reverts every host",
		watch, until.UTC().Format(time.RFC3339), r.GetSpec().GetPostRollout().GetKeepOld(), r.GetId())
	o.log.Info("release state", "release_id", r.GetId(), "to", stateName(relWatching), "reason", reason)
	return o.w.SetReleaseState(ctx, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: now.UnixNano(), ReleaseId: r.GetId(), State: relWatching, Reason: reason, Actor: Actor,
		CurrentPhase: -1, WatchUntilUnixNano: until.UnixNano(),
	})
}

// stepWatching reads the gates over every host of a watching release; a
// failure rolls the release back, the window's end finalizes it.
func (o *Orchestrator) stepWatching(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	start, until := watchSpan(r)
	now := o.now()
	final := !now.Before(until)
	if final && (rn.watchFinal != nil || !rn.finalizeStart.IsZero()) {
		return o.finalize(ctx, rn, r)
	}
	if final {
		// One last reading, over the window's last stretch: a failure
		// there still rolls back; otherwise it is the evidence the
		// success carries (finalize).
		now = until
	}
	views := o.watchViews(rn, r, start, now)
	results := o.watchGates(ctx, rn, r, views, start, now, final)
	if ctx.Err() != nil {
		return ctx.Err() // leadership lost mid-reading: not evidence
	}
	failed := failedOf(results)
	if len(failed) == 0 {
		if final {
			rn.watchFinal = append([]gateResult{}, results...)
			return o.finalize(ctx, rn, r)
		}
		return nil
	}
	idx := r.GetCurrentPhase()
	var evs []*rollwavev1.Event
	var details []string
	for _, g := range results {
		evs = append(evs, gateEvent(r, idx, g))
	}
	for _, g := range failed {
		details = append(details, g.Detail)
	}
	reason := fmt.Sprintf("post_rollout watch: gate failed %s into the window (%s left): %s; rolling every host back",
		now.Sub(start).Round(time.Millisecond), until.Sub(now).Round(time.Second), strings.Join(details, "; "))
	return o.setRelease(ctx, r, relRollingBack, reason, evs...)
}

// watchViews returns the hosts a watch judges: those on the release's
// version at the start of the window (healthy) and those that failed
// since. Hosts that failed or were cut off during the phases were judged
// there; a host cut off now is no evidence against the release.
func (o *Orchestrator) watchViews(rn *run, r *rollwavev1.Release, start, now time.Time) []hostView {
	app, version := r.GetSpec().GetApp(), r.GetSpec().GetVersion()
	hold := unhealthyHold(r.GetSpec())
	var out []hostView
	for _, a := range o.liveAssignments(r) {
		v := hostView{host: a.GetHost(), a: a}
		switch st := a.GetState(); {
		case st == asHealthy || st == asFinalized:
			v.status = hostHealthy
			if _, ok := o.unreachableFor(v.host, now); ok {
				v.unreachable = true
				delete(rn.unhealthySince, v.host)
				break
			}
			if why, bad := slotUnhealthy(o, v.host, app, version); bad {
				since, seen := rn.unhealthySince[v.host]
				if !seen {
					rn.unhealthySince[v.host] = now
					since = now
				}
				if now.Sub(since) >= hold {
					v.status = hostFailed
					v.reason = fmt.Sprintf("new slot failing its health checks for %s (>= %s): %s", now.Sub(since).Round(time.Millisecond), hold, why)
				}
				break
			}
			delete(rn.unhealthySince, v.host)
		case cutOff(a) || untouched(a):
			continue
		case time.Unix(0, a.GetUpdatedUnixNano()).Before(start):
			continue // decided during the phases
		default: // failed or reverting since the window started
			v.status = hostFailed
			v.reason = fmt.Sprintf("%s during the watch: %s", stateName(st), a.GetReason())
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b hostView) int { return strings.Compare(a.host, b.host) })
	return out
}

// unhealthyHold is how long a host's new slot must fail its health checks,
// as its heartbeats tell, before the watch counts the host failed: three
// check intervals of the slowest check (as the agent's bake monitor
// does), at least a second. One failed probe is not a failed host.
func unhealthyHold(spec *rollwavev1.ReleaseSpec) time.Duration {
	var iv time.Duration
	for _, c := range spec.GetHealth().GetChecks() {
		iv = max(iv, sattime.Millis(c.GetIntervalMs()))
	}
	return max(3*iv, time.Second)
}

// slotUnhealthy reports whether host's latest heartbeat shows the app's
// slot running version failing its health checks, and the last error.
func slotUnhealthy(o *Orchestrator, host, app, version string) (string, bool) {
	hb, _, ok := o.agents.Heartbeat(host)
	if !ok {
		return "", false
	}
	for _, s := range hb.GetSlots() {
		if s.GetApp() == app && s.GetVersion() == version {
			if s.GetHealthy() {
				return "", false
			}
			return s.GetLastCheckError(), true
		}
	}
	return "", false
}

// watchGates reads, over the watched hosts, the gates that judge a
// deployed version: max_failed_hosts (hosts that failed in the window),
// the thresholds, the request gates over a trailing window, and the
// external gates when they are due. The baseline comparison has no old
// version left to compare with and is not read.
// The final reading at the window's end reads every external gate.
func (o *Orchestrator) watchGates(ctx context.Context, rn *run, r *rollwavev1.Release, views []hostView, start, now time.Time, final bool) []gateResult {
	var results []gateResult
	for _, g := range o.budgetGates(r, nil, views) {
		// A host cut off during the watch says nothing about the
		// release: only the failed-host budget is read.
		if g.Gate == "max_failed_hosts" {
			results = append(results, g)
		}
	}
	results = append(results, o.thresholdGates(r, views)...)
	if requestGatesOn(r) {
		o.mu.Lock()
		enabled := o.enabledAt
		o.mu.Unlock()
		// The proxies' counts are leader memory: a new leader reads
		// only what it saw itself.
		from := latest(start, now.Add(-watchRequestWindow(r)), enabled)
		results = append(results, o.requestGatesIn(r, views, from, now)...)
	}
	if len(r.GetSpec().GetGates().GetMetricGates()) > 0 {
		all := watchedPhase(r, views)
		results = append(results, o.readMetricGates(ctx, rn, r, all, func(g *extgate.Gate, last time.Time) bool {
			return final || last.IsZero() || now.Sub(last) >= g.Interval()
		})...)
	}
	return results
}

// watchedPhase is the phase the external gates are told about during the
// watch: the last phase's index, with every watched host and its cells.
func watchedPhase(r *rollwavev1.Release, views []hostView) *rollwavev1.Phase {
	p := &rollwavev1.Phase{Index: r.GetCurrentPhase()}
	cells := map[string]bool{}
	for _, ph := range r.GetPhases() {
		for _, c := range ph.GetCells() {
			cells[c] = true
		}
	}
	for _, v := range views {
		p.Hosts = append(p.Hosts, v.host)
	}
	p.Cells = slices.Sorted(maps.Keys(cells))
	return p
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
