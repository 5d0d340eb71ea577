package coordinator

import (
	"math/rand/v2"
	"time"
)

// backoff yields capped exponential delays with full jitter: each delay is
// uniform in [0, min(cap, base·2^n)).
type backoff struct {
	base, max time.Duration
	n         int
}

func newBackoff(base, max time.Duration) *backoff { return &backoff{base: base, max: max} }

func (b *backoff) next() time.Duration {
	d := b.base << b.n
	if d <= 0 || d > b.max {
		d = b.max
	} else {
		b.n++
	}
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}
