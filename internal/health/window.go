package health

import (
	"sync"
	"time"
)

// Window is a bounded ring buffer of timestamped float64 samples. Once it
// holds capacity samples, each Add overwrites the oldest. It also keeps a
// drain cursor so a heartbeat can take "the samples since the previous
// heartbeat" without removing them from the window. It is safe for
// concurrent use.
type Window struct {
	mu      sync.Mutex
	times   []time.Time
	values  []float64
	next    int    // slot the next Add writes
	n       int    // samples held, <= capacity
	added   uint64 // samples ever added
	drained uint64 // value of added at the last Drain
}

// NewWindow returns a window holding at most capacity samples. A capacity
// below 1 is treated as 1.
func NewWindow(capacity int) *Window {
	capacity = max(capacity, 1)
	return &Window{times: make([]time.Time, capacity), values: make([]float64, capacity)}
}

// Add appends a sample taken at t, evicting the oldest when full. Samples
// are expected in time order; Since assumes it.
func (w *Window) Add(t time.Time, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.times[w.next] = t
	w.values[w.next] = v
	w.next = (w.next + 1) % len(w.values)
	w.n = min(w.n+1, len(w.values))
	w.added++
}

// Len returns how many samples the window holds.
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Cap returns the window's capacity.
func (w *Window) Cap() int { return len(w.values) } // immutable after NewWindow

// Values returns every held sample, oldest first.
func (w *Window) Values() []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastLocked(w.n)
}

// Since returns the held samples taken at or after t, oldest first.
func (w *Window) Since(t time.Time) []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := 0 // how many of the newest samples are at or after t
	for k < w.n && !w.times[w.index(w.n-1-k)].Before(t) {
		k++
	}
	return w.lastLocked(k)
}

// Drain returns the samples added since the previous Drain (all samples on
// the first call), oldest first, and moves the drain cursor. Samples stay
// in the window for Since and Values. If more than capacity samples were
// added since the previous Drain, only the newest capacity are returned;
// Undrained, read before Drain, tells how many there were.
func (w *Window) Drain() []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := int(min(w.added-w.drained, uint64(w.n)))
	w.drained = w.added
	return w.lastLocked(k)
}

// Undrained returns how many samples were added since the previous Drain,
// including any that were already overwritten (so the caller can tell a
// heartbeat lost samples).
func (w *Window) Undrained() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.added - w.drained
}

// index maps the i-th held sample (0 = oldest) to its slot.
func (w *Window) index(i int) int {
	c := len(w.values)
	return (w.next - w.n + i + c) % c
}

// lastLocked copies the newest k samples, oldest first.
func (w *Window) lastLocked(k int) []float64 {
	out := make([]float64, k)
	for i := range k {
		out[i] = w.values[w.index(w.n-k+i)]
	}
	return out
}
