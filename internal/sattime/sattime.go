// Package sattime does deadline arithmetic that cannot overflow.
//
// Deadlines are stored and sent as Unix nanoseconds (int64), which end in
// April 2262, and durations arrive as int64 milliseconds in specs. Plain
// arithmetic wraps silently: time.Duration(ms)*time.Millisecond for a
// large ms is negative, and now.Add(2562047*time.Hour).UnixNano() is a
// date in the past, so a bake of "2562047h" "passed" the moment it
// started. Every function here saturates instead: a deadline too far
// away becomes Latest, which never passes.
//
// The package depends on nothing but the standard library, so any layer
// may use it.
package sattime

import (
	"math"
	"time"
)

var (
	// Latest is the latest instant whose UnixNano fits in an int64
	// (2262-04-11T23:47:16.854775807Z).
	Latest = time.Unix(0, math.MaxInt64).UTC()
	// Earliest is the earliest instant whose UnixNano fits in an int64
	// (1677-09-21T00:12:43.145224192Z).
	Earliest = time.Unix(0, math.MinInt64).UTC()
)

// Add returns t+d, clamped to [Earliest, Latest] so that its UnixNano is
// exact. A t outside that range is clamped first. The monotonic clock
// reading of t is kept when no clamping happens.
func Add(t time.Time, d time.Duration) time.Time {
	switch {
	case t.After(Latest):
		t = Latest
	case t.Before(Earliest):
		t = Earliest
	}
	n := t.UnixNano()
	switch {
	case d > 0 && n > math.MaxInt64-int64(d):
		return Latest
	case d < 0 && n < math.MinInt64-int64(d):
		return Earliest
	}
	return t.Add(d)
}

// Millis converts milliseconds to a Duration, saturating at the largest
// and smallest Durations instead of wrapping.
func Millis(ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	switch {
	case ms > limit:
		return math.MaxInt64
	case ms < -limit:
		return -math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// Sum adds durations, saturating at the largest and smallest Durations.
func Sum(ds ...time.Duration) time.Duration {
	var total time.Duration
	for _, d := range ds {
		switch {
		case d > 0 && total > math.MaxInt64-d:
			total = math.MaxInt64
		case d < 0 && total < -math.MaxInt64-d:
			total = -math.MaxInt64
		default:
			total += d
		}
	}
	return total
}
