package raftfsm

import (
	"fmt"

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
		e = clone(e)
		if e.TimeUnixNano == 0 {
			e.TimeUnixNano = now
		}
		s.appendEvent(e)
	}
}

func applyAddFreeze(s *view, _ uint64, cmd *v1.AddFreezeCommand) error {
	w := cmd.GetWindow()
	switch {
	case w == nil:
		return reject(ErrInvalid, "freeze window is required")
	case w.GetId() == "":
		return reject(ErrInvalid, "freeze window id is required")
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
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "freeze.added", Actor: w.GetCreatedBy(),
		Message: fmt.Sprintf("freeze window %q added: %s", w.Id, w.GetReason()),
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
