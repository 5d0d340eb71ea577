package agent

import (
	"sync"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// reportQueue holds reports (assignment progress, rehearsal results)
// until a leader session takes them. It is bounded: when full, the oldest
// report is dropped (the hello of the next session carries every app's
// latest generation and state anyway, and the leader asks for a
// rehearsal's result again until it has it).
type reportQueue[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
	// same tells a report that repeats the newest queued one.
	same func(a, b T) bool
	// ready has a token when items is non-empty, to wake the sender.
	ready chan struct{}
}

// progressQueue holds assignment progress.
type progressQueue = reportQueue[*rollwavev1.AssignmentProgress]

func newProgressQueue(max int) *progressQueue {
	return &progressQueue{max: max, same: sameProgress, ready: make(chan struct{}, 1)}
}

// rehearsalQueue holds rehearsal results.
type rehearsalQueue = reportQueue[*rollwavev1.RehearsalResult]

func newRehearsalQueue(max int) *rehearsalQueue {
	return &rehearsalQueue{max: max, ready: make(chan struct{}, 1), same: func(a, b *rollwavev1.RehearsalResult) bool {
		return a.GetApp() == b.GetApp() && a.GetGeneration() == b.GetGeneration()
	}}
}

func (q *reportQueue[T]) push(p T) {
	q.mu.Lock()
	if n := len(q.items); n > 0 && q.same(q.items[n-1], p) {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, p)
	if len(q.items) > q.max {
		q.items = q.items[len(q.items)-q.max:]
	}
	q.mu.Unlock()
	q.wake()
}

func (q *reportQueue[T]) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns everything queued.
func (q *reportQueue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// requeue puts reports that could not be sent back in front.
func (q *reportQueue[T]) requeue(ps []T) {
	if len(ps) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(append([]T{}, ps...), q.items...)
	if len(q.items) > q.max {
		q.items = q.items[len(q.items)-q.max:]
	}
	q.mu.Unlock()
	q.wake()
}

// sendAll sends everything queued, wrapped by msg; what could not be sent
// goes back in front.
func (q *reportQueue[T]) sendAll(send func(*rollwavev1.AgentMessage) error, msg func(T) *rollwavev1.AgentMessage) error {
	ps := q.take()
	for i, p := range ps {
		if err := send(msg(p)); err != nil {
			q.requeue(ps[i:])
			return err
		}
	}
	return nil
}

func sameProgress(a, b *rollwavev1.AssignmentProgress) bool {
	return a.GetApp() == b.GetApp() && a.GetGeneration() == b.GetGeneration() &&
		a.GetState() == b.GetState() && a.GetReason() == b.GetReason()
}
