package raftfsm

import (
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applySetNotifyCursors stores notification delivery cursors (type 22).
// The whole command is checked first: a cursor without a target, or one
// past the newest event, rejects it. A cursor below the stored one is
// skipped (a write an earlier leader queued before a newer leader moved
// the cursor on): cursors never move back, so no event is delivered
// twice because of it and none is skipped. It writes no audit event: the
// cursor moves because events were delivered, and an event about that
// would have to be delivered too.
func applySetNotifyCursors(s *view, _ uint64, cmd *v1.SetNotifyCursorsCommand) error {
	if len(cmd.GetCursors()) == 0 {
		return reject(ErrInvalid, "set notify cursors: no cursors")
	}
	var last uint64
	if e := s.lastEvent(); e != nil {
		last = e.GetSeq()
	}
	seen := map[string]bool{}
	for i, c := range cmd.GetCursors() {
		switch {
		case c.GetTarget() == "":
			return reject(ErrInvalid, "cursors[%d]: target is required", i)
		case seen[c.GetTarget()]:
			return reject(ErrInvalid, "cursors[%d]: target %q appears twice", i, c.GetTarget())
		case c.GetDeliveredSeq() > last:
			return reject(ErrInvalid, "cursors[%d]: target %q: delivered_seq %d is past the newest event (%d)",
				i, c.GetTarget(), c.GetDeliveredSeq(), last)
		}
		seen[c.GetTarget()] = true
	}
	for _, c := range cmd.GetCursors() {
		old := first[*v1.NotifyCursor](s, tNotify, strKey(c.GetTarget()))
		if old != nil && c.GetDeliveredSeq() < old.GetDeliveredSeq() {
			continue
		}
		c = clone(c)
		c.UpdatedUnixNano = cmd.GetTimeUnixNano()
		if old != nil {
			c.CreatedUnixNano = old.GetCreatedUnixNano()
			// Losses only add up; a stale writer cannot take one back.
			if c.GetLostEvents() < old.GetLostEvents() {
				c.LostEvents, c.LastLoss = old.GetLostEvents(), old.GetLastLoss()
			}
		} else if c.CreatedUnixNano == 0 {
			c.CreatedUnixNano = cmd.GetTimeUnixNano()
		}
		s.put(tNotify, c)
	}
	return nil
}

// NotifyCursors returns every notification cursor, sorted by target.
func (s *State) NotifyCursors() []*v1.NotifyCursor {
	return cloneAll[*v1.NotifyCursor](s.read(), tNotify, "id", nil)
}

// NotifyCursor returns one target's cursor, or nil.
func (s *State) NotifyCursor(target string) *v1.NotifyCursor {
	return cloneOrNil(first[*v1.NotifyCursor](s.read(), tNotify, strKey(target)))
}

// LastEvent returns the newest audit event (highest seq), or nil.
func (s *State) LastEvent() *v1.Event { return cloneOrNil(s.read().lastEvent()) }

// WatchEvents returns a watch that fires when an audit event is added or
// removed (or the state is restored), and the newest event's seq at the
// time it was taken (0: none).
func (s *State) WatchEvents() (Watch, uint64) {
	v, ws := s.watch()
	ch, o, err := v.tx.LastWatch(tEvent, "id")
	if err != nil {
		panic(err) // schema error: a programming mistake
	}
	ws.Add(ch)
	var last uint64
	if e, ok := o.(*v1.Event); ok {
		last = e.GetSeq()
	}
	return Watch{ws}, last
}
