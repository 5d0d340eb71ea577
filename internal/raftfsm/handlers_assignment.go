package raftfsm

import (
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applyCreateAssignments starts new generations. The batch is all or
// nothing: one bad assignment rejects it, naming the host.
func applyCreateAssignments(s *view, _ uint64, cmd *v1.CreateAssignmentsCommand) error {
	seen := map[hostApp]bool{}
	for i, a := range cmd.GetAssignments() {
		if err := s.validateNewAssignment(i, a); err != nil {
			return err
		}
		k := hostApp{a.GetHost(), a.GetApp()}
		if seen[k] {
			return reject(ErrInvalid, "assignments[%d]: host %q app %q appears twice in one batch", i, k.host, k.app)
		}
		seen[k] = true
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	for _, a := range cmd.GetAssignments() {
		a = copyAssignment(a)
		a.State = v1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED
		if a.CreatedUnixNano == 0 {
			a.CreatedUnixNano = now
		}
		a.UpdatedUnixNano = now
		s.putAssignment(a)
	}
	s.appendEvents(cmd.GetEvents(), now)
	return nil
}

func (s *view) validateNewAssignment(i int, a *v1.Assignment) error {
	switch {
	case a.GetHost() == "" || a.GetApp() == "":
		return reject(ErrInvalid, "assignments[%d]: host and app are required", i)
	case a.GetGeneration() == 0:
		return reject(ErrInvalid, "assignments[%d]: host %q: generation must be > 0", i, a.GetHost())
	}
	if st := a.GetState(); st != v1.AssignmentState_ASSIGNMENT_STATE_UNSPECIFIED && st != v1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
		return reject(ErrInvalid, "assignments[%d]: host %q: a new assignment must be assigned, not %s", i, a.GetHost(), stateName(st))
	}
	if s.host(a.GetHost()) == nil {
		return reject(ErrNotFound, "assignments[%d]: host %q is not registered", i, a.GetHost())
	}
	r := s.release(a.GetReleaseId())
	switch {
	case r == nil:
		return reject(ErrNotFound, "assignments[%d]: host %q: release %q does not exist", i, a.GetHost(), a.GetReleaseId())
	case r.GetSpec().GetApp() != a.GetApp():
		return reject(ErrInvalid, "assignments[%d]: host %q: release %q is for app %q, not %q", i, a.GetHost(), r.Id, r.GetSpec().GetApp(), a.GetApp())
	case ReleaseTerminal(r.GetState()):
		return reject(ErrConflict, "assignments[%d]: host %q: release %q is %s", i, a.GetHost(), r.Id, stateName(r.GetState()))
	case len(r.GetPhases()) > 0 && (a.GetPhase() < 0 || int(a.GetPhase()) >= len(r.GetPhases())):
		return reject(ErrInvalid, "assignments[%d]: host %q: release %q has no phase %d", i, a.GetHost(), r.Id, a.GetPhase())
	}
	if cur := s.current(a.GetHost(), a.GetApp()); cur != nil {
		if a.GetGeneration() <= cur.GetGeneration() {
			return reject(ErrConflict, "assignments[%d]: host %q app %q: generation %d must exceed %d", i, a.GetHost(), a.GetApp(), a.GetGeneration(), cur.GetGeneration())
		}
		if !AssignmentEnded(cur.GetState()) {
			return reject(ErrConflict, "assignments[%d]: host %q app %q: generation %d (release %q) is still %s; it must end first",
				i, a.GetHost(), a.GetApp(), cur.GetGeneration(), cur.GetReleaseId(), stateName(cur.GetState()))
		}
	}
	return nil
}

// applyUpdateAssignments records agents' progress. Each update stands alone:
// agents resend, and reports race with newer generations, so a stale or
// illegal update is skipped and counted rather than failing the batch.
//
// An entry often carries several steps of one assignment (an agent reports
// SWITCHED, BAKING and HEALTHY back to back, and they wait in the host
// writer's batch together). Each step is checked against the state the step
// before it left, and its event is appended in entry order, exactly as if
// every step were stored; but each assignment is stored once, with its last
// state. A memdb write copies the paths of three index trees (~10 µs and
// tens of allocations), and every replica pays it for every step; the state
// after the entry is the same either way (readers never see the middle of an
// entry).
func applyUpdateAssignments(s *view, _ uint64, cmd *v1.UpdateAssignmentsCommand) *UpdateResult {
	res := &UpdateResult{}
	now := cmd.GetTimeUnixNano()
	// changed holds this entry's working copy of each assignment it moved,
	// in first-change order (so the writes below are in entry order).
	changed := make(map[hostApp]*v1.Assignment, len(cmd.GetUpdates()))
	var order []*v1.Assignment
	for _, u := range cmd.GetUpdates() {
		k := hostApp{u.GetHost(), u.GetApp()}
		cur, mine := changed[k]
		if !mine {
			cur = s.current(k.host, k.app)
		}
		if cur == nil || cur.GetGeneration() != u.GetGeneration() ||
			!AssignmentTransitionAllowed(cur.GetState(), u.GetState()) {
			res.Skipped++
			continue
		}
		if !mine {
			cur = copyAssignment(cur)
			changed[k] = cur
			order = append(order, cur)
		}
		cur.State = u.GetState()
		cur.Reason = u.GetReason()
		cur.UpdatedUnixNano = now
		res.Applied++
		if ev := u.GetEvent(); ev != nil {
			s.appendOwnEvent(assignmentEvent(ev, cur), now) // assignmentEvent copies
		}
	}
	for _, a := range order {
		s.putAssignment(a)
	}
	return res
}

// assignmentEvent is an update's event with the release, phase and host
// it belongs to taken from the assignment where the event leaves them
// empty (ev itself is not modified).
func assignmentEvent(ev *v1.Event, a *v1.Assignment) *v1.Event {
	ev = clone(ev)
	if ev.ReleaseId == "" {
		ev.ReleaseId, ev.Phase = a.GetReleaseId(), a.GetPhase()
	}
	if ev.Host == "" {
		ev.Host = a.GetHost()
	}
	return ev
}

// copyAssignment is proto.Clone for an Assignment without reflection: the
// apply of every agent step copies one, on every replica, and
// proto.Clone's reflection was up to ~8 % of an UpdateAssignments apply
// (CPU profile of BenchmarkApplyProgressBatch).
// Every field is a scalar or a string, so a field-by-field copy is a deep
// one; TestCopyAssignmentCopiesEveryField fails when a field is added to
// Assignment and not here.
func copyAssignment(a *v1.Assignment) *v1.Assignment {
	return &v1.Assignment{
		Host: a.Host, App: a.App, Generation: a.Generation, ReleaseId: a.ReleaseId, Phase: a.Phase,
		State: a.State, Version: a.Version, TargetSlot: a.TargetSlot, Reason: a.Reason,
		CreatedUnixNano: a.CreatedUnixNano, UpdatedUnixNano: a.UpdatedUnixNano, BakeDeadlineUnixNano: a.BakeDeadlineUnixNano,
	}
}
