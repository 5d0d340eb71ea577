package raftfsm

import (
	"fmt"
	"strings"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applyAppendEvents adds audit events. Seqs are assigned here, whatever the
// proposer sent; a missing time takes the command's.
func applyAppendEvents(s *view, _ uint64, cmd *v1.AppendEventsCommand) error {
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	s.appendEvents(cmd.GetEvents(), cmd.GetTimeUnixNano())
	return nil
}

// checkEvents validates events a command carries, before anything changes.
func checkEvents(evs []*v1.Event) error {
	for i, e := range evs {
		if e.GetKind() == "" {
			return reject(ErrInvalid, "events[%d]: kind is required", i)
		}
	}
	return nil
}

// appendEvents appends copies of evs; a missing time takes now. The
// transition commands call it once every check has passed, so a decision
// and its evidence are applied together or not at all.
func (s *view) appendEvents(evs []*v1.Event, now int64) {
	for _, e := range evs {
		s.appendOwnEvent(clone(e), now)
	}
}

// appendOwnEvent appends e, which the caller owns (a copy nobody else
// holds), its time defaulting to the entry's.
func (s *view) appendOwnEvent(e *v1.Event, now int64) {
	if e.TimeUnixNano == 0 {
		e.TimeUnixNano = now
	}
	s.appendEvent(e)
}

func applyAddFreeze(s *view, _ uint64, cmd *v1.AddFreezeCommand) error {
	w := cmd.GetWindow()
	switch {
	case w == nil:
		return reject(ErrInvalid, "freeze window is required")
	case w.GetId() == "":
		return reject(ErrInvalid, "freeze window id is required")
	case w.GetCron() != "":
		// A recurring window. Its cron expression and zone are checked by
		// the proposer (internal/freeze), not here: whether a library
		// accepts an expression could change between versions, and replay
		// must not.
		if w.GetFromUnixNano() != 0 || w.GetToUnixNano() != 0 {
			return reject(ErrInvalid, "freeze window %q: a recurring window (cron) takes no from/to", w.GetId())
		}
		if d := w.GetDurationMs(); d <= 0 || d > maxFreezeDurationMs {
			return reject(ErrInvalid, "freeze window %q: duration %d ms must be more than 0 and at most 31 days", w.GetId(), d)
		}
	case w.GetFromUnixNano() >= w.GetToUnixNano():
		return reject(ErrInvalid, "freeze window %q: from (%d) must be before to (%d)", w.GetId(), w.GetFromUnixNano(), w.GetToUnixNano())
	}
	if s.freeze(w.GetId()) != nil {
		return reject(ErrExists, "freeze window %q already exists; remove it first or choose another id", w.GetId())
	}
	w = clone(w)
	if w.CreatedUnixNano == 0 {
		w.CreatedUnixNano = cmd.GetTimeUnixNano()
	}
	s.put(tFreeze, w)
	var evidence map[string]string
	if w.GetCron() != "" {
		evidence = map[string]string{"cron": w.GetCron(), "duration_ms": fmt.Sprint(w.GetDurationMs()), "timezone": w.GetTimezone()}
	}
	if len(w.GetApps()) > 0 || len(w.GetCells()) > 0 {
		if evidence == nil {
			evidence = map[string]string{}
		}
		evidence["apps"], evidence["cells"] = strings.Join(w.GetApps(), ","), strings.Join(w.GetCells(), ",")
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "freeze.added", Actor: w.GetCreatedBy(),
		Message: fmt.Sprintf("freeze window %q added: %s", w.Id, w.GetReason()), Evidence: evidence,
	})
	return nil
}

// maxFreezeDurationMs caps one occurrence of a recurring window: 31 days.
const maxFreezeDurationMs = 31 * 24 * 3600 * 1000

// applyOverrideFreeze records an admin's freeze override on a live
// release, with its audit event, in one entry.
func applyOverrideFreeze(s *view, _ uint64, cmd *v1.OverrideFreezeCommand) error {
	r := s.release(cmd.GetReleaseId())
	switch {
	case r == nil:
		return reject(ErrNotFound, "release %q does not exist", cmd.GetReleaseId())
	case cmd.GetActor() == "":
		return reject(ErrInvalid, "release %q: a freeze override needs an actor", r.GetId())
	case cmd.GetReason() == "":
		return reject(ErrInvalid, "release %q: a freeze override needs a reason", r.GetId())
	case ReleaseTerminal(r.GetState()):
		return reject(ErrConflict, "release %q has ended (%s); there is nothing to override", r.GetId(), stateName(r.GetState()))
	case r.GetFreezeOverride() != nil:
		return reject(ErrConflict, "release %q already overrides freezes (by %s: %s)", r.GetId(),
			r.GetFreezeOverride().GetActor(), r.GetFreezeOverride().GetReason())
	}
	now := cmd.GetTimeUnixNano()
	r = clone(r)
	r.FreezeOverride = &v1.FreezeOverride{Actor: cmd.GetActor(), Reason: cmd.GetReason(), TimeUnixNano: now}
	r.UpdatedUnixNano = now
	s.put(tRelease, r)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: r.Id, Kind: "freeze.overridden", Actor: cmd.GetActor(), Phase: r.CurrentPhase,
		Message:  fmt.Sprintf("freeze windows overridden for release %q by %s: %s", r.Id, cmd.GetActor(), cmd.GetReason()),
		Evidence: map[string]string{"reason": cmd.GetReason()},
	})
	return nil
}

func applyRemoveFreeze(s *view, _ uint64, cmd *v1.RemoveFreezeCommand) error {
	w := s.freeze(cmd.GetId())
	if w == nil {
		return reject(ErrNotFound, "freeze window %q does not exist", cmd.GetId())
	}
	s.del(tFreeze, w)
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "freeze.removed", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("freeze window %q removed", cmd.GetId()),
	})
	return nil
}

func applySetGlobalFreeze(s *view, _ uint64, cmd *v1.SetGlobalFreezeCommand) error {
	if cmd.GetOn() && cmd.GetReason() == "" {
		return reject(ErrInvalid, "a global freeze needs a reason")
	}
	m := s.meta()
	m.globalFreeze, m.freezeReason = cmd.GetOn(), cmd.GetReason()
	s.setMeta(m)
	kind := "freeze.global_off"
	if cmd.GetOn() {
		kind = "freeze.global_on"
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: kind, Actor: cmd.GetActor(), Message: cmd.GetReason(),
	})
	return nil
}
