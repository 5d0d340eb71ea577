package agent

import (
	"sync/atomic"
	"time"
)

// Clock is the agent's source of time. Every deadline and every "how long
// since" (contact, healthy_deadline, the failing-checks grace, backoff) is
// measured on Mono, which only moves forward at the rate of real time; Now
// (the wall clock) only stamps reports and anchors deadlines persisted
// across a restart. An NTP step of the wall clock therefore changes no
// decision of a running agent.
type Clock interface {
	// Now is the wall-clock time.
	Now() time.Time
	// Mono is a monotonic reading: the time elapsed since an arbitrary
	// origin fixed when the clock was made.
	Mono() time.Duration
}

// RealClock returns the clock backed by package time: Mono is time.Since
// a start time, which Go measures on the monotonic clock.
func RealClock() Clock { return realClock{start: time.Now()} }

type realClock struct{ start time.Time }

func (c realClock) Now() time.Time      { return time.Now() }
func (c realClock) Mono() time.Duration { return time.Since(c.start) }

// SkewClock is a real clock whose wall reading can be stepped, as NTP or an
// operator steps a host's clock, while its monotonic reading keeps real
// time. Tests use it to prove that no decision follows the wall clock.
type SkewClock struct {
	start  time.Time
	offset atomic.Int64
}

// NewSkewClock returns a SkewClock that starts in step with real time.
func NewSkewClock() *SkewClock { return &SkewClock{start: time.Now()} }

// Now is the real wall time plus every step so far.
func (c *SkewClock) Now() time.Time {
	return time.Now().Round(0).Add(time.Duration(c.offset.Load()))
}

// Mono is unaffected by Step.
func (c *SkewClock) Mono() time.Duration { return time.Since(c.start) }

// Step moves the wall clock by d (forward or back).
func (c *SkewClock) Step(d time.Duration) { c.offset.Add(int64(d)) }
