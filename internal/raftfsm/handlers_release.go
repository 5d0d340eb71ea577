package raftfsm

import (
	"fmt"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applySubmitRelease stores a new release with its computed plan and makes
// it the app's active release. One active release per app.
func applySubmitRelease(s *view, _ uint64, cmd *v1.SubmitReleaseCommand) error {
	r := cmd.GetRelease()
	switch {
	case r == nil:
		return reject(ErrInvalid, "release is required")
	case r.GetId() == "":
		return reject(ErrInvalid, "release id is required")
	case r.GetSpec().GetApp() == "":
		return reject(ErrInvalid, "release %q: spec.app is required", r.GetId())
	}
	if s.release(r.GetId()) != nil {
		return reject(ErrExists, "release %q already exists; choose another id", r.GetId())
	}
	if st := r.GetState(); st != v1.ReleaseState_RELEASE_STATE_UNSPECIFIED && st != v1.ReleaseState_RELEASE_STATE_PENDING {
		return reject(ErrInvalid, "release %q: a new release must be pending, not %s", r.GetId(), stateName(st))
	}
	for i, p := range r.GetPhases() {
		if p.GetIndex() != int32(i) {
			return reject(ErrInvalid, "release %q: phases[%d] has index %d; phases must be numbered 0, 1, 2, ...", r.GetId(), i, p.GetIndex())
		}
		if st := p.GetState(); st != v1.PhaseState_PHASE_STATE_UNSPECIFIED && st != v1.PhaseState_PHASE_STATE_PENDING {
			return reject(ErrInvalid, "release %q: phase %d must start pending, not %s", r.GetId(), i, stateName(st))
		}
	}
	app := r.GetSpec().GetApp()
	if a := s.app(app); a.GetActiveReleaseId() != "" {
		active := s.release(a.GetActiveReleaseId())
		return reject(ErrConflict, "app %q already has release %q (%s); abort or finish it first",
			app, a.GetActiveReleaseId(), stateName(active.GetState()))
	}

	regions, err := deriveRegions(r.GetId(), r.GetPhases())
	if err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	r = clone(r)
	r.Regions = regions
	r.State = v1.ReleaseState_RELEASE_STATE_PENDING
	r.CurrentPhase = 0
	for _, p := range r.Phases {
		p.State = v1.PhaseState_PHASE_STATE_PENDING
	}
	if r.CreatedUnixNano == 0 {
		r.CreatedUnixNano = now
	}
	r.UpdatedUnixNano = now
	if r.CreatedBy == "" {
		r.CreatedBy = cmd.GetActor()
	}
	s.put(tRelease, r)
	a := s.app(app)
	if a == nil {
		a = &v1.App{Name: app}
	} else {
		a = clone(a)
	}
	a.ActiveReleaseId = r.Id
	a.UpdatedUnixNano = now
	s.put(tApp, a)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "release.submitted", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("release %q of app %q version %q submitted with %d phase(s)", r.Id, app, r.GetSpec().GetVersion(), len(r.Phases)),
	})
	return nil
}

func applySetReleaseState(s *view, _ uint64, cmd *v1.SetReleaseStateCommand) error {
	return setReleaseState(s, cmd, false)
}

// applyAbortRelease aborts a release from any live state, rolling_back
// included (type 20; see AbortRelease).
func applyAbortRelease(s *view, _ uint64, cmd *v1.SetReleaseStateCommand) error {
	if cmd.GetState() != v1.ReleaseState_RELEASE_STATE_ABORTED {
		return reject(ErrInvalid, "AbortRelease must set state aborted, got %s", stateName(cmd.GetState()))
	}
	return setReleaseState(s, cmd, true)
}

func setReleaseState(s *view, cmd *v1.SetReleaseStateCommand, abortRollback bool) error {
	r := s.release(cmd.GetReleaseId())
	if r == nil {
		return reject(ErrNotFound, "release %q does not exist", cmd.GetReleaseId())
	}
	from, to := r.GetState(), cmd.GetState()
	if !ReleaseTransitionAllowed(from, to) && !(abortRollback && from == v1.ReleaseState_RELEASE_STATE_ROLLING_BACK) {
		return reject(ErrIllegalTransition, "release %q cannot go from %s to %s", r.GetId(), stateName(from), stateName(to))
	}
	cp := cmd.GetCurrentPhase()
	// A release without phases may still name phase 0 (the proto default).
	if cp != -1 && (cp < 0 || (int(cp) >= len(r.GetPhases()) && !(cp == 0 && len(r.GetPhases()) == 0))) {
		return reject(ErrInvalid, "release %q: current_phase %d out of range (release has %d phase(s); -1 leaves it unchanged)", r.GetId(), cp, len(r.GetPhases()))
	}
	if to == v1.ReleaseState_RELEASE_STATE_WATCHING && cmd.GetWatchUntilUnixNano() <= cmd.GetTimeUnixNano() {
		return reject(ErrInvalid, "release %q: watching needs watch_until after the command's time, got %d (time %d)", r.GetId(), cmd.GetWatchUntilUnixNano(), cmd.GetTimeUnixNano())
	}
	if to == v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED {
		if err := checkPartial(r); err != nil {
			return err
		}
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}

	now := cmd.GetTimeUnixNano()
	s.appendEvents(cmd.GetEvents(), now)
	r = clone(r)
	followRelease(r, to, now)
	r.State = to
	r.Reason = cmd.GetReason()
	r.UpdatedUnixNano = now
	if cp != -1 {
		r.CurrentPhase = cp
	}
	if to == v1.ReleaseState_RELEASE_STATE_WATCHING {
		// Absolute: a later leader continues the same window.
		r.WatchUntilUnixNano = cmd.GetWatchUntilUnixNano()
	}
	s.put(tRelease, r)
	if ReleaseTerminal(to) {
		app := s.app(r.GetSpec().GetApp())
		if app != nil && app.ActiveReleaseId == r.Id {
			app = clone(app)
			app.ActiveReleaseId = ""
			app.UpdatedUnixNano = now
			if to == v1.ReleaseState_RELEASE_STATE_SUCCEEDED {
				app.CurrentVersion = r.GetSpec().GetVersion()
			}
			s.put(tApp, app)
		}
	}
	if to == v1.ReleaseState_RELEASE_STATE_ABORTED {
		s.abandonAssignments(r.Id, now)
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "release." + stateName(to), Actor: cmd.GetActor(),
		Phase: r.CurrentPhase, Message: fmt.Sprintf("release %q: %s -> %s: %s", r.Id, stateName(from), stateName(to), cmd.GetReason()),
	})
	return nil
}

// abandonAssignments leaves hosts where they are: an abort stops the
// rollout without reverting anything.
func (s *view) abandonAssignments(releaseID string, now int64) {
	for _, a := range all[*v1.Assignment](s, tHist, "release", strKey(releaseID)) {
		cur := s.current(a.GetHost(), a.GetApp())
		if cur == a && !AssignmentEnded(cur.GetState()) {
			cur = clone(cur)
			cur.State = v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED
			cur.Reason = "release aborted"
			cur.UpdatedUnixNano = now
			s.putAssignment(cur)
		}
	}
}

// phaseOf finds a phase of a live release for the phase commands. It
// returns clones, for the caller to change and store (put(tRelease, r)).
func (s *view) phaseOf(releaseID string, index int32) (*v1.Release, *v1.Phase, error) {
	r := s.release(releaseID)
	if r == nil {
		return nil, nil, reject(ErrNotFound, "release %q does not exist", releaseID)
	}
	if index < 0 || int(index) >= len(r.GetPhases()) {
		return nil, nil, reject(ErrNotFound, "release %q has no phase %d (it has %d)", releaseID, index, len(r.GetPhases()))
	}
	if ReleaseTerminal(r.GetState()) {
		return nil, nil, reject(ErrConflict, "release %q is %s; its phases can no longer change", releaseID, stateName(r.GetState()))
	}
	r = clone(r)
	return r, r.Phases[index], nil
}

func applySetPhaseState(s *view, _ uint64, cmd *v1.SetPhaseStateCommand) error {
	r, p, err := s.phaseOf(cmd.GetReleaseId(), cmd.GetIndex())
	if err != nil {
		return err
	}
	from, to := p.GetState(), cmd.GetState()
	if !PhaseTransitionAllowed(from, to) {
		return reject(ErrIllegalTransition, "release %q phase %d cannot go from %s to %s", r.Id, p.Index, stateName(from), stateName(to))
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	s.appendEvents(cmd.GetEvents(), now)
	switch to {
	case v1.PhaseState_PHASE_STATE_DEPLOYING:
		p.StartedUnixNano = now
	case v1.PhaseState_PHASE_STATE_BAKING:
		// Absolute, so a new leader resumes the same countdown.
		p.BakeDeadlineUnixNano = cmd.GetBakeDeadlineUnixNano()
		p.BakeSkipped = cmd.GetBakeSkipped()
	case v1.PhaseState_PHASE_STATE_VERIFIED, v1.PhaseState_PHASE_STATE_FAILED:
		p.FinishedUnixNano = now
	}
	p.State = to
	p.Reason = cmd.GetReason()
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "phase." + stateName(to), Phase: p.Index, Region: p.GetRegion(),
		Message: fmt.Sprintf("phase %d: %s -> %s: %s", p.Index, stateName(from), stateName(to), cmd.GetReason()),
	})
	return nil
}

// applyApprovePhase records an operator's approval. Moving the release on
// from awaiting_approval is the orchestrator's separate SetReleaseState.
func applyApprovePhase(s *view, _ uint64, cmd *v1.ApprovePhaseCommand) error {
	r, p, err := s.phaseOf(cmd.GetReleaseId(), cmd.GetIndex())
	if err != nil {
		return err
	}
	switch {
	case !p.GetApprovalRequired():
		return reject(ErrInvalid, "release %q phase %d does not require approval", r.Id, p.Index)
	case p.GetApproved():
		return reject(ErrConflict, "release %q phase %d is already approved", r.Id, p.Index)
	}
	now := cmd.GetTimeUnixNano()
	p.Approved = true
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "phase.approved", Actor: cmd.GetActor(), Phase: p.Index,
		Message: fmt.Sprintf("phase %d approved by %s", p.Index, cmd.GetActor()),
	})
	return nil
}

// applyAckRelease records an operator's acknowledgement of a failed
// release (type 23): once, and only after a failure, so the time to
// acknowledge is measured from one alert to one answer.
func applyAckRelease(s *view, _ uint64, cmd *v1.AckReleaseCommand) error {
	r := s.release(cmd.GetReleaseId())
	switch {
	case r == nil:
		return reject(ErrNotFound, "release %q does not exist", cmd.GetReleaseId())
	case cmd.GetActor() == "":
		return reject(ErrInvalid, "release %q: an acknowledgement needs an actor", r.GetId())
	case r.GetAckedUnixNano() != 0:
		return reject(ErrConflict, "release %q was already acknowledged by %s at %s; an alert is acknowledged once",
			r.GetId(), r.GetAckedBy(), time.Unix(0, r.GetAckedUnixNano()).UTC().Format(time.RFC3339))
	case !ReleaseFailed(r):
		return reject(ErrConflict, "release %q has not failed (it is %s and no phase failed); there is nothing to acknowledge",
			r.GetId(), stateName(r.GetState()))
	}
	now := cmd.GetTimeUnixNano()
	r = clone(r)
	r.AckedUnixNano, r.AckedBy, r.AckReason = now, cmd.GetActor(), cmd.GetReason()
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	msg := fmt.Sprintf("release %q failure acknowledged by %s", r.Id, cmd.GetActor())
	if cmd.GetReason() != "" {
		msg += ": " + cmd.GetReason()
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "release.acked", Actor: cmd.GetActor(), Phase: r.CurrentPhase, Message: msg,
	})
	return nil
}
