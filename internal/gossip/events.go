package gossip

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// EventType says what happened to a member.
type EventType int

const (
	// EventJoin: a member became alive (new, or back after failing/leaving).
	EventJoin EventType = iota + 1
	// EventLeave: a member failed (Status dead) or left gracefully (Status left).
	EventLeave
	// EventUpdate: an alive member changed its metadata.
	EventUpdate
)

// String returns "join", "leave" or "update".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventUpdate:
		return "update"
	default:
		return fmt.Sprintf("EventType(%d)", int(t))
	}
}

// Event is one membership change, as seen by this node.
type Event struct {
	Type EventType
	// Member is the member's state after the change.
	Member Member
	// Missed counts events this subscriber lost, because its channel was
	// full, since the previous event it received. Non-zero means the
	// subscriber's picture is incomplete: resynchronise from Pool.Members.
	Missed uint64
}

// DefaultSubscribeBuffer is the channel capacity Subscribe uses when asked
// for zero or less.
const DefaultSubscribeBuffer = 64

type subscriber struct {
	ch     chan Event
	missed uint64 // guarded by hub.mu
}

// hub fans events out to subscribers without ever blocking the publisher,
// which runs inside memberlist's event delegate with memberlist's node lock
// held. A subscriber whose channel is full loses the event; the loss is
// counted and reported in the next event it does receive (Event.Missed), so
// it can resynchronise. Dropping beats coalescing here: events are rare
// outside mass failures, Members() always has the full current view, and a
// bounded channel plus a counter is easy to reason about.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	dropped atomic.Uint64
}

func newHub() *hub {
	return &hub{subs: make(map[*subscriber]struct{})}
}

// publish delivers ev to every subscriber that has room, without blocking.
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		e := ev
		e.Missed = s.missed
		select {
		case s.ch <- e:
			s.missed = 0
		default:
			s.missed++
			h.dropped.Add(1)
		}
	}
}

// subscribe registers a subscriber. The returned cancel function removes it
// and closes its channel; it is safe to call more than once.
func (h *hub) subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = DefaultSubscribeBuffer
	}
	s := &subscriber{ch: make(chan Event, buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			// After close() the channel is already closed and gone from subs.
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}

// close closes every subscriber channel; later subscriptions get a closed
// channel.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}
