package raftfsm

import (
	"fmt"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applyAppendEvents adds audit events. Seqs are assigned here, whatever the
// proposer sent; a missing time takes the command's.
func applyAppendEvents(s *State, _ uint64, cmd *v1.AppendEventsCommand) error {
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	s.appendEventsLocked(cmd.GetEvents(), cmd.GetTimeUnixNano())
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

// appendEventsLocked appends copies of evs; a missing time takes now. The
// transition commands call it once every check has passed, so a decision
// and its evidence are applied together or not at all.
func (s *State) appendEventsLocked(evs []*v1.Event, now int64) {
	for _, e := range evs {
		e = clone(e)
		if e.TimeUnixNano == 0 {
			e.TimeUnixNano = now
		}
		s.appendEventLocked(e)
	}
}

func applyAddFreeze(s *State, _ uint64, cmd *v1.AddFreezeCommand) error {
	w := cmd.GetWindow()
	switch {
	case w == nil:
		return reject(ErrInvalid, "freeze window is required")
	case w.GetId() == "":
		return reject(ErrInvalid, "freeze window id is required")
	case w.GetFromUnixNano() >= w.GetToUnixNano():
		return reject(ErrInvalid, "freeze window %q: from (%d) must be before to (%d)", w.GetId(), w.GetFromUnixNano(), w.GetToUnixNano())
	}
	if _, dup := s.freezes[w.GetId()]; dup {
		return reject(ErrExists, "freeze window %q already exists; remove it first or choose another id", w.GetId())
	}
	w = clone(w)
	if w.CreatedUnixNano == 0 {
		w.CreatedUnixNano = cmd.GetTimeUnixNano()
	}
	s.freezes[w.Id] = w
	s.appendEventLocked(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "freeze.added", Actor: w.GetCreatedBy(),
		Message: fmt.Sprintf("freeze window %q added: %s", w.Id, w.GetReason()),
	})
	return nil
}

func applyRemoveFreeze(s *State, _ uint64, cmd *v1.RemoveFreezeCommand) error {
	if _, ok := s.freezes[cmd.GetId()]; !ok {
		return reject(ErrNotFound, "freeze window %q does not exist", cmd.GetId())
	}
	delete(s.freezes, cmd.GetId())
	s.appendEventLocked(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "freeze.removed", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("freeze window %q removed", cmd.GetId()),
	})
	return nil
}

func applySetGlobalFreeze(s *State, _ uint64, cmd *v1.SetGlobalFreezeCommand) error {
	if cmd.GetOn() && cmd.GetReason() == "" {
		return reject(ErrInvalid, "a global freeze needs a reason")
	}
	s.globalFreeze = cmd.GetOn()
	s.freezeReason = cmd.GetReason()
	kind := "freeze.global_off"
	if cmd.GetOn() {
		kind = "freeze.global_on"
	}
	s.appendEventLocked(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: kind, Actor: cmd.GetActor(), Message: cmd.GetReason(),
	})
	return nil
}
