package raftfsm

import (
	"fmt"
	"slices"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Region states, as ReleaseState values (RegionProgress.state).
const (
	regionPending     = v1.ReleaseState_RELEASE_STATE_PENDING
	regionRunning     = v1.ReleaseState_RELEASE_STATE_RUNNING
	regionSucceeded   = v1.ReleaseState_RELEASE_STATE_SUCCEEDED
	regionRollingBack = v1.ReleaseState_RELEASE_STATE_ROLLING_BACK
	regionRolledBack  = v1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	regionFailed      = v1.ReleaseState_RELEASE_STATE_FAILED
	regionAborted     = v1.ReleaseState_RELEASE_STATE_ABORTED
)

// regionTransitions is the region state machine. running -> running is
// an advance to the region's next phase.
var regionTransitions = map[v1.ReleaseState][]v1.ReleaseState{
	regionPending:     {regionRunning},
	regionRunning:     {regionRunning, regionSucceeded, regionRollingBack},
	regionRollingBack: {regionRolledBack, regionFailed},
}

// regionEventKinds names the event of a region's move to a state.
var regionEventKinds = map[v1.ReleaseState]string{
	regionSucceeded:   "region.succeeded",
	regionRollingBack: "region.rolling_back",
	regionRolledBack:  "region.rolled_back",
	regionFailed:      "region.failed",
}

// RegionTerminal reports whether a region in state s is done: succeeded,
// rolled back, failed or aborted.
func RegionTerminal(s v1.ReleaseState) bool {
	switch s {
	case regionSucceeded, regionRolledBack, regionFailed, regionAborted:
		return true
	}
	return false
}

// deriveRegions builds the per-region progress of a plan: one entry per
// region its phases name, in phase order. The shared phases come first
// and each region's phases are contiguous (internal/deploy/plan), so a
// region's phases are a range of indexes.
func deriveRegions(id string, phases []*v1.Phase) ([]*v1.RegionProgress, error) {
	var out []*v1.RegionProgress
	seen := map[string]bool{}
	for i, p := range phases {
		rg := p.GetRegion()
		if rg == "" {
			if len(out) > 0 {
				return nil, reject(ErrInvalid, "release %q: phase %d has no region but follows regional phases; shared phases come first", id, i)
			}
			continue
		}
		if last := len(out) - 1; last >= 0 && out[last].Region == rg {
			out[last].PhaseCount++
			continue
		}
		if seen[rg] {
			return nil, reject(ErrInvalid, "release %q: region %q's phases are not contiguous (phase %d)", id, rg, i)
		}
		seen[rg] = true
		out = append(out, &v1.RegionProgress{Region: rg, State: regionPending, FirstPhase: int32(i), CurrentPhase: int32(i), PhaseCount: 1})
	}
	return out, nil
}

// regionOf finds a region of a release; it returns its index, or -1.
func regionOf(r *v1.Release, region string) int {
	return slices.IndexFunc(r.GetRegions(), func(g *v1.RegionProgress) bool { return g.GetRegion() == region })
}

// applySetRegionState moves one region of a running release (type 31):
// pending -> running once the shared phases are verified; running ->
// running to its next phase once the current one is verified; running ->
// succeeded once its last phase is verified; running -> rolling_back
// (fail_local) and rolling_back -> rolled_back or failed.
func applySetRegionState(s *view, _ uint64, cmd *v1.SetRegionStateCommand) error {
	r := s.release(cmd.GetReleaseId())
	if r == nil {
		return reject(ErrNotFound, "release %q does not exist", cmd.GetReleaseId())
	}
	i := regionOf(r, cmd.GetRegion())
	if i < 0 {
		return reject(ErrNotFound, "release %q has no region %q (regions come from phases.parallel_regions_after)", r.GetId(), cmd.GetRegion())
	}
	if st := r.GetState(); st != v1.ReleaseState_RELEASE_STATE_RUNNING && st != v1.ReleaseState_RELEASE_STATE_PAUSED {
		return reject(ErrConflict, "release %q is %s; its regions change only while it is running or paused", r.GetId(), stateName(st))
	}
	g := r.GetRegions()[i]
	from, to := g.GetState(), cmd.GetState()
	if !allowed(regionTransitions, from, to) {
		return reject(ErrIllegalTransition, "release %q region %q cannot go from %s to %s", r.GetId(), g.GetRegion(), stateName(from), stateName(to))
	}
	first, last := g.GetFirstPhase(), g.GetFirstPhase()+g.GetPhaseCount()-1
	cp := cmd.GetCurrentPhase()
	if cp != -1 && (cp < first || cp > last) {
		return reject(ErrInvalid, "release %q region %q: current_phase %d is not one of its phases %d-%d (-1 leaves it unchanged)", r.GetId(), g.GetRegion(), cp, first, last)
	}
	switch {
	case from == regionPending:
		for _, p := range r.GetPhases()[:first] {
			if p.GetRegion() == "" && p.GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
				return reject(ErrConflict, "release %q region %q cannot start: shared phase %d is %s", r.GetId(), g.GetRegion(), p.GetIndex(), stateName(p.GetState()))
			}
		}
	case to == regionRunning: // an advance
		cur := g.GetCurrentPhase()
		if cp != cur+1 {
			return reject(ErrInvalid, "release %q region %q: can only advance from phase %d to %d, not to %d", r.GetId(), g.GetRegion(), cur, cur+1, cp)
		}
		if p := r.GetPhases()[cur]; p.GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
			return reject(ErrConflict, "release %q region %q phase %d is %s; it must be verified first", r.GetId(), g.GetRegion(), cur, stateName(p.GetState()))
		}
	case to == regionSucceeded:
		for _, p := range r.GetPhases()[first : last+1] {
			if p.GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
				return reject(ErrConflict, "release %q region %q cannot succeed: its phase %d is %s", r.GetId(), g.GetRegion(), p.GetIndex(), stateName(p.GetState()))
			}
		}
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	s.appendEvents(cmd.GetEvents(), now)
	r = clone(r)
	g = r.Regions[i]
	g.State = to
	g.Reason = cmd.GetReason()
	g.UpdatedUnixNano = now
	if cp != -1 {
		g.CurrentPhase = cp
	}
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	kind := regionEventKinds[to]
	if from == regionRunning && to == regionRunning {
		kind = "region.advanced"
	} else if from == regionPending {
		kind = "region.started"
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: kind, Actor: cmd.GetActor(), Phase: g.CurrentPhase, Region: g.Region,
		Message: fmt.Sprintf("release %q region %q: %s -> %s (phase %d): %s", r.Id, g.Region, stateName(from), stateName(to), g.CurrentPhase, cmd.GetReason()),
	})
	return nil
}

// followRelease moves the regions of r (a clone, about to be stored) with
// a release-wide transition to to: a rollback, its end or an abort of the
// whole release takes every region still there with it.
func followRelease(r *v1.Release, to v1.ReleaseState, now int64) {
	for _, g := range r.GetRegions() {
		var next v1.ReleaseState
		switch to {
		case v1.ReleaseState_RELEASE_STATE_ROLLING_BACK:
			if g.State == regionRolledBack || g.State == regionFailed {
				continue // rolled back on its own already (fail_local)
			}
			next = regionRollingBack
		case v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, v1.ReleaseState_RELEASE_STATE_FAILED:
			if g.State != regionRollingBack {
				continue
			}
			next = to
		case v1.ReleaseState_RELEASE_STATE_ABORTED:
			if RegionTerminal(g.State) {
				continue
			}
			next = regionAborted
		case v1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			next = regionSucceeded
		default:
			continue
		}
		if g.State != next {
			g.State, g.UpdatedUnixNano = next, now
			g.Reason = "release " + stateName(to)
		}
	}
}

// checkPartial validates a release's move to partially_succeeded: every
// region done, at least one succeeded and at least one not.
func checkPartial(r *v1.Release) error {
	ok, bad := 0, 0
	for _, g := range r.GetRegions() {
		switch {
		case !RegionTerminal(g.GetState()):
			return reject(ErrConflict, "release %q cannot end partially_succeeded: region %q is %s", r.GetId(), g.GetRegion(), stateName(g.GetState()))
		case g.GetState() == regionSucceeded:
			ok++
		default:
			bad++
		}
	}
	if ok == 0 || bad == 0 {
		return reject(ErrConflict, "release %q cannot end partially_succeeded: %d region(s) succeeded and %d did not; it needs some of each", r.GetId(), ok, bad)
	}
	return nil
}
