// Package backoff yields capped exponential delays with full jitter, for
// every retry loop in rollwave (gossip joins, agent reconnects).
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter: its n-th delay
// is uniform in [0, min(Max, Min·2^n)) plus 1 ms, so it is never zero.
// The zero value is not usable; use New.
type Backoff struct {
	min, max time.Duration
	n        int
}

// New returns a Backoff starting at min and capped at max.
func New(min, max time.Duration) *Backoff { return &Backoff{min: min, max: max} }

// Next returns the next delay and grows the window.
func (b *Backoff) Next() time.Duration {
	d := b.min << b.n
	if d <= 0 || d > b.max {
		d = b.max
	} else {
		b.n++
	}
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

// Reset starts the window over (after a success).
func (b *Backoff) Reset() { b.n = 0 }
