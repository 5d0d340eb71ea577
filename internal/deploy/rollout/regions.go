package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Parallel regions (phases.parallel_regions_after). Once the shared phases
// are verified, the release's current phase stays the last shared one and
// each region in Release.regions runs its own phases with the same steps a
// release runs its phases with (startPhase, watchPhase, the gates); its
// start, advances, success and rollback are SetRegionState entries. A
// failed regional phase applies rollback.on_failure: "fail_local" rolls
// back and stops that region only (region rolling_back, then rolled_back
// or failed), any other policy acts on the whole release as without
// regions. When every region is done the release ends: succeeded (all
// succeeded: the post_rollout watch, then finalize), partially_succeeded
// (some of each: the succeeded regions' hosts are finalized), or rolling
// back what is left (none succeeded).

// stepRegions takes the next step of every region still in progress, each
// against the release as raft has it now; it stops as soon as one of them
// moved the whole release (a pause, a release-wide rollback).
func (o *Orchestrator) stepRegions(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	var errs []error
	done := true
	for _, name := range regionNames(r) {
		cur := o.state.Release(r.GetId())
		if cur.GetState() != relRunning {
			return errors.Join(errs...)
		}
		g := regionByName(cur, name)
		if raftfsm.RegionTerminal(g.GetState()) {
			continue
		}
		done = false
		if err := o.stepRegion(ctx, rn, cur, g); err != nil {
			errs = append(errs, fmt.Errorf("region %s: %w", name, err))
		}
	}
	if done && len(errs) == 0 {
		return o.endRegions(ctx, rn, o.state.Release(r.GetId()))
	}
	return errors.Join(errs...)
}

func regionNames(r *rollwavev1.Release) []string {
	out := make([]string, len(r.GetRegions()))
	for i, g := range r.GetRegions() {
		out[i] = g.GetRegion()
	}
	return out
}

func regionByName(r *rollwavev1.Release, name string) *rollwavev1.RegionProgress {
	for _, g := range r.GetRegions() {
		if g.GetRegion() == name {
			return g
		}
	}
	return nil
}

// regionOfPhase is the region whose own phases include index, or nil.
func regionOfPhase(r *rollwavev1.Release, index int32) *rollwavev1.RegionProgress {
	for _, g := range r.GetRegions() {
		if index >= g.GetFirstPhase() && index < g.GetFirstPhase()+g.GetPhaseCount() {
			return g
		}
	}
	return nil
}

func (o *Orchestrator) stepRegion(ctx context.Context, rn *run, r *rollwavev1.Release, g *rollwavev1.RegionProgress) error {
	switch g.GetState() {
	case relPending:
		first, n := g.GetFirstPhase(), g.GetPhaseCount()
		hosts := 0
		for _, p := range r.GetPhases()[first : first+n] {
			hosts += len(p.GetHosts())
		}
		shared := r.GetRegions()[0].GetFirstPhase() // the shared phases come first
		return o.setRegion(ctx, r, g, relRunning, -1, fmt.Sprintf("shared phases 0-%d verified; region %s runs its own phases %d-%d (%d host(s)) with its own bakes and gates",
			shared-1, g.GetRegion(), first, first+n-1, hosts))
	case relRunning:
		p := r.GetPhases()[g.GetCurrentPhase()]
		switch p.GetState() {
		case phPending:
			return o.startPhase(ctx, rn, r, p)
		case phDeploying, phBaking:
			return o.watchPhase(ctx, rn, r, p)
		case phVerified:
			if err := o.verifiedHousekeeping(ctx, rn, r, p); err != nil {
				return err
			}
			if last := g.GetFirstPhase() + g.GetPhaseCount() - 1; p.GetIndex() < last {
				return o.setRegion(ctx, r, g, relRunning, p.GetIndex()+1, fmt.Sprintf("phase %d verified", p.GetIndex()))
			}
			return o.setRegion(ctx, r, g, relSucceeded, -1, fmt.Sprintf("every phase of region %s verified (%d-%d)",
				g.GetRegion(), g.GetFirstPhase(), g.GetFirstPhase()+g.GetPhaseCount()-1))
		case phFailed:
			return o.applyPolicy(ctx, rn, r, p)
		}
	case relRollingBack:
		return o.rollbackRegion(ctx, rn, r, g)
	}
	return nil
}

// setRegion moves region g of r; evs, the decision's evidence, go into the
// same raft entry.
func (o *Orchestrator) setRegion(ctx context.Context, r *rollwavev1.Release, g *rollwavev1.RegionProgress, to rollwavev1.ReleaseState, phase int32, reason string, evs ...*rollwavev1.Event) error {
	o.log.Info("region state", "release_id", r.GetId(), "region", g.GetRegion(), "to", stateName(to), "phase", phase, "reason", reason)
	now := o.now().UnixNano()
	return o.w.SetRegionState(ctx, &rollwavev1.SetRegionStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), Region: g.GetRegion(), State: to, Reason: reason, Actor: Actor,
		CurrentPhase: phase, Events: stamp(evs, now),
	})
}

// failRegion applies fail_local to the failed regional phase p: its region
// rolls back alone; the others go on.
func (o *Orchestrator) failRegion(ctx context.Context, r *rollwavev1.Release, p *rollwavev1.Phase, why string) error {
	g := regionOfPhase(r, p.GetIndex())
	if g == nil || g.GetState() != relRunning {
		return nil // rolling back already (a new leader repeats the step)
	}
	return o.setRegion(ctx, r, g, relRollingBack, -1, why+"; only region "+g.GetRegion()+" rolls back, the other regions go on")
}

// regionHosts is every host of r in region g: its own phases' hosts, and
// the shared phases' hosts whose agent reports that region.
func (o *Orchestrator) regionHosts(r *rollwavev1.Release, g *rollwavev1.RegionProgress) map[string]bool {
	out := map[string]bool{}
	for _, p := range r.GetPhases() {
		switch {
		case p.GetRegion() == g.GetRegion():
			for _, h := range p.GetHosts() {
				out[h] = true
			}
		case p.GetRegion() == "":
			for _, h := range p.GetHosts() {
				rg := o.state.Host(h).GetRegion()
				if rg == "" {
					rg = plan.NoRegion
				}
				if rg == g.GetRegion() {
					out[h] = true
				}
			}
		}
	}
	return out
}

// rollbackRegion reverts every host of the region this release switched,
// then ends the region rolled_back, or failed when hosts could not be
// reverted within RevertTimeout.
func (o *Orchestrator) rollbackRegion(ctx context.Context, rn *run, r *rollwavev1.Release, g *rollwavev1.RegionProgress) error {
	now := o.now()
	if rn.regionRevertStart == nil {
		rn.regionRevertStart = map[string]time.Time{}
	}
	start, ok := rn.regionRevertStart[g.GetRegion()]
	if !ok {
		start = now
		rn.regionRevertStart[g.GetRegion()] = now
	}
	hosts := o.regionHosts(r, g)
	var live []*rollwavev1.Assignment
	for _, a := range o.liveAssignments(r) {
		if hosts[a.GetHost()] {
			live = append(live, a)
		}
	}
	waiting, stuck, err := o.orderReverts(ctx, rn, r, g.GetCurrentPhase(), live,
		fmt.Sprintf("release %s region %s rolling back: %s", r.GetId(), g.GetRegion(), g.GetReason()))
	if err != nil {
		return err
	}
	if len(waiting) > 0 {
		if now.Sub(start) <= o.cfg.RevertTimeout {
			return nil
		}
		slices.Sort(waiting)
		stuck = append(stuck, waiting...)
	}
	reverted := 0
	for _, a := range o.liveAssignments(r) {
		if hosts[a.GetHost()] && (a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED || a.GetState() == asIsolated) {
			reverted++
		}
	}
	evidence := map[string]string{"reverted": fmt.Sprint(reverted), "hosts": fmt.Sprint(len(hosts))}
	if len(stuck) > 0 {
		evidence["not_reverted"] = strings.Join(stuck, ",")
		msg := fmt.Sprintf("region %s rollback incomplete: %d host(s) reverted, %d not: %s", g.GetRegion(), reverted, len(stuck), strings.Join(stuck, ","))
		return o.setRegion(ctx, r, g, rollwavev1.ReleaseState_RELEASE_STATE_FAILED, -1, msg,
			ev(r, g.GetCurrentPhase(), "region.rollback_incomplete", msg, evidence))
	}
	return o.setRegion(ctx, r, g, relRolledBack, -1, fmt.Sprintf("region %s: %d host(s) reverted to the old version in %s; the other regions are untouched",
		g.GetRegion(), reverted, now.Sub(start).Round(time.Millisecond)))
}

// endRegions ends a release every region of which is done.
func (o *Orchestrator) endRegions(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	ok, notOK := regionOutcome(r)
	switch {
	case len(notOK) == 0:
		if watchOf(r) > 0 {
			return o.startWatch(ctx, r)
		}
		return o.finalize(ctx, rn, r)
	case len(ok) > 0:
		return o.finalize(ctx, rn, r) // partially_succeeded
	default:
		// Nothing succeeded: what is left of the release (hosts of
		// the shared phases in no region's list, reverts that did
		// not complete) goes back as in any rollback.
		return o.setRelease(ctx, r, relRollingBack, "every region was rolled back on its own: "+strings.Join(notOK, ", "))
	}
}

// regionOutcome lists the succeeded regions and the others ("name (state)").
func regionOutcome(r *rollwavev1.Release) (ok, notOK []string) {
	for _, g := range r.GetRegions() {
		if g.GetState() == relSucceeded {
			ok = append(ok, g.GetRegion())
		} else {
			notOK = append(notOK, fmt.Sprintf("%s (%s)", g.GetRegion(), stateName(g.GetState())))
		}
	}
	return ok, notOK
}

// finalizable is the live assignments finalize may finalize, and, when
// some regions did not succeed, the reason of a partial success: the
// hosts of those regions are left out.
func (o *Orchestrator) finalizable(r *rollwavev1.Release) ([]*rollwavev1.Assignment, string) {
	// Shared, not copied: finalize only reads them.
	live := o.state.LiveAssignmentsShared(r.GetId())
	ok, notOK := regionOutcome(r)
	if len(notOK) == 0 || len(ok) == 0 {
		return live, ""
	}
	skip := map[string]bool{}
	for _, g := range r.GetRegions() {
		if g.GetState() != relSucceeded {
			for h := range o.regionHosts(r, g) {
				skip[h] = true
			}
		}
	}
	out := live[:0:0]
	for _, a := range live {
		if !skip[a.GetHost()] {
			out = append(out, a)
		}
	}
	return out, fmt.Sprintf("regions succeeded: %s; not: %s", strings.Join(ok, ", "), strings.Join(notOK, ", "))
}
