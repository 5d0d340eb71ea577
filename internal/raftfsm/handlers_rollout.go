package raftfsm

import (
	"fmt"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applySetReleasePlan replaces a release's phases. Only a release that is
// pending or running, none of whose phases has started, may be planned
// again, and no host may yet be assigned to it: the orchestrator plans a
// release at start against the fleet of that moment.
func applySetReleasePlan(s *view, _ uint64, cmd *v1.SubmitReleaseCommand) error {
	in := cmd.GetRelease()
	r := s.release(in.GetId())
	if r == nil {
		return reject(ErrNotFound, "release %q does not exist", in.GetId())
	}
	switch r.GetState() {
	case v1.ReleaseState_RELEASE_STATE_PENDING, v1.ReleaseState_RELEASE_STATE_RUNNING:
	default:
		return reject(ErrConflict, "release %q is %s; only a pending or running release can be planned again", r.Id, stateName(r.GetState()))
	}
	for _, p := range r.GetPhases() {
		if p.GetState() != v1.PhaseState_PHASE_STATE_PENDING {
			return reject(ErrConflict, "release %q phase %d is %s; a plan cannot change once a phase started", r.Id, p.GetIndex(), stateName(p.GetState()))
		}
	}
	if len(all[*v1.Assignment](s, tHist, "release", strKey(r.Id))) > 0 {
		return reject(ErrConflict, "release %q already has hosts assigned; its plan cannot change", r.Id)
	}
	if len(in.GetPhases()) == 0 {
		return reject(ErrInvalid, "release %q: a plan needs at least one phase", r.Id)
	}
	for i, p := range in.GetPhases() {
		if p.GetIndex() != int32(i) {
			return reject(ErrInvalid, "release %q: phases[%d] has index %d; phases must be numbered 0, 1, 2, ...", r.Id, i, p.GetIndex())
		}
		if st := p.GetState(); st != v1.PhaseState_PHASE_STATE_UNSPECIFIED && st != v1.PhaseState_PHASE_STATE_PENDING {
			return reject(ErrInvalid, "release %q: phase %d must start pending, not %s", r.Id, i, stateName(st))
		}
	}
	regions, err := deriveRegions(r.Id, in.GetPhases())
	if err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	r = clone(r)
	r.Regions = regions
	r.Phases = nil
	hosts := 0
	for _, p := range in.GetPhases() {
		p = clone(p)
		p.State = v1.PhaseState_PHASE_STATE_PENDING
		hosts += len(p.GetHosts())
		r.Phases = append(r.Phases, p)
	}
	r.CurrentPhase = 0
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "release.planned", Actor: cmd.GetActor(),
		Message:  fmt.Sprintf("release %q planned with %d phase(s) over %d host(s)", r.Id, len(r.Phases), hosts),
		Evidence: map[string]string{"phases": fmt.Sprint(len(r.Phases)), "hosts": fmt.Sprint(hosts)},
	})
	return nil
}

// applyAdvancePhase moves a running release on to its next phase. The
// current phase must be verified, and the target must be the very next one.
func applyAdvancePhase(s *view, _ uint64, cmd *v1.SetReleaseStateCommand) error {
	r := s.release(cmd.GetReleaseId())
	if r == nil {
		return reject(ErrNotFound, "release %q does not exist", cmd.GetReleaseId())
	}
	if st := cmd.GetState(); st != v1.ReleaseState_RELEASE_STATE_UNSPECIFIED && st != v1.ReleaseState_RELEASE_STATE_RUNNING {
		return reject(ErrInvalid, "release %q: advancing a phase keeps the release running; state %s is not allowed", r.Id, stateName(st))
	}
	if r.GetState() != v1.ReleaseState_RELEASE_STATE_RUNNING {
		return reject(ErrConflict, "release %q is %s; only a running release advances", r.Id, stateName(r.GetState()))
	}
	cur, next := r.GetCurrentPhase(), cmd.GetCurrentPhase()
	if next != cur+1 || int(next) >= len(r.GetPhases()) {
		return reject(ErrInvalid, "release %q: can only advance from phase %d to %d (it has %d phase(s)), not to %d", r.Id, cur, cur+1, len(r.GetPhases()), next)
	}
	if p := r.Phases[cur]; p.GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
		return reject(ErrConflict, "release %q phase %d is %s; it must be verified first", r.Id, cur, stateName(p.GetState()))
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	s.appendEvents(cmd.GetEvents(), now)
	r = clone(r)
	r.CurrentPhase = next
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "release.advanced", Actor: cmd.GetActor(), Phase: next,
		Message: fmt.Sprintf("release %q: phase %d verified, phase %d next: %s", r.Id, cur, next, cmd.GetReason()),
	})
	return nil
}
