package agent

import (
	"sync"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// progressQueue holds assignment progress until a leader session takes it.
// It is bounded: when full, the oldest report is dropped (the hello of the
// next session carries every app's latest generation and state anyway).
type progressQueue struct {
	mu    sync.Mutex
	items []*rollwavev1.AssignmentProgress
	max   int
	// ready has a token when items is non-empty, to wake the sender.
	ready chan struct{}
}

func newProgressQueue(max int) *progressQueue {
	return &progressQueue{max: max, ready: make(chan struct{}, 1)}
}

func (q *progressQueue) push(p *rollwavev1.AssignmentProgress) {
	q.mu.Lock()
	if n := len(q.items); n > 0 && sameProgress(q.items[n-1], p) {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, p)
	if len(q.items) > q.max {
		q.items = q.items[len(q.items)-q.max:]
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns everything queued.
func (q *progressQueue) take() []*rollwavev1.AssignmentProgress {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// requeue puts reports that could not be sent back in front.
func (q *progressQueue) requeue(ps []*rollwavev1.AssignmentProgress) {
	if len(ps) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(append([]*rollwavev1.AssignmentProgress{}, ps...), q.items...)
	if len(q.items) > q.max {
		q.items = q.items[len(q.items)-q.max:]
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func sameProgress(a, b *rollwavev1.AssignmentProgress) bool {
	return a.GetApp() == b.GetApp() && a.GetGeneration() == b.GetGeneration() &&
		a.GetState() == b.GetState() && a.GetReason() == b.GetReason()
}
