package sattime

import (
	"math"
	"testing"
	"time"
)

// Issue 11 item 6: a deadline at or past the end of int64 nanoseconds
// must not wrap into the past.
func TestSecurityDurationOverflowAdd(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		t    time.Time
		d    time.Duration
		want time.Time
	}{
		{"30 days: exact", now, 30 * 24 * time.Hour, now.Add(30 * 24 * time.Hour)},
		{"2562047h saturates", now, 2562047 * time.Hour, Latest},
		{"largest duration saturates", now, math.MaxInt64, Latest},
		{"to the last nanosecond", Latest.Add(-time.Hour), time.Hour, Latest},
		{"one past the last nanosecond", Latest.Add(-time.Hour), time.Hour + 1, Latest},
		{"from past the end", Latest.Add(time.Hour), -time.Hour, Latest.Add(-time.Hour)},
		{"backwards, in range", now, -math.MaxInt64, now.Add(-math.MaxInt64)},
		{"backwards saturates", Earliest.Add(time.Hour), -2 * time.Hour, Earliest},
		{"backwards from before the start", Earliest.Add(-time.Hour), time.Hour, Earliest.Add(time.Hour)},
		{"zero", now, 0, now},
	}
	for _, c := range cases {
		got := Add(c.t, c.d)
		if !got.Equal(c.want) {
			t.Errorf("%s: Add(%s, %s) = %s, want %s", c.name, c.t, c.d, got, c.want)
		}
		// The point of it all: UnixNano round-trips and moves the way d does.
		if back := time.Unix(0, got.UnixNano()); !back.Equal(got) {
			t.Errorf("%s: %s does not survive UnixNano (%s)", c.name, got, back)
		}
	}
	// The old arithmetic: the deadline wraps to before now.
	if wrapped := now.Add(2562047 * time.Hour).UnixNano(); wrapped > now.UnixNano() {
		t.Fatalf("plain Add no longer wraps (%d): this test no longer shows the bug it guards", wrapped)
	}
	for _, d := range []time.Duration{1, time.Hour, 2562047 * time.Hour, math.MaxInt64} {
		if Add(now, d).UnixNano() <= now.UnixNano() {
			t.Errorf("Add(now, %s) is not after now", d)
		}
	}
}

func TestSecurityDurationOverflowMillis(t *testing.T) {
	cases := []struct {
		ms   int64
		want time.Duration
	}{
		{0, 0},
		{1500, 1500 * time.Millisecond},
		{(30 * 24 * time.Hour).Milliseconds(), 30 * 24 * time.Hour},
		{math.MaxInt64 / 1_000_000, time.Duration(math.MaxInt64/1_000_000) * time.Millisecond},
		{math.MaxInt64/1_000_000 + 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
		{-math.MaxInt64, -math.MaxInt64},
		{math.MinInt64, -math.MaxInt64},
	}
	for _, c := range cases {
		if got := Millis(c.ms); got != c.want {
			t.Errorf("Millis(%d) = %d, want %d", c.ms, got, c.want)
		}
	}
}

func TestSecurityDurationOverflowSum(t *testing.T) {
	if got := Sum(math.MaxInt64, time.Hour, time.Minute); got != math.MaxInt64 {
		t.Errorf("Sum past the top = %d", got)
	}
	if got := Sum(-math.MaxInt64, -time.Hour); got != -math.MaxInt64 {
		t.Errorf("Sum past the bottom = %d", got)
	}
	if got := Sum(2*time.Minute, 10*time.Second, 5*time.Second); got != 2*time.Minute+15*time.Second {
		t.Errorf("Sum = %s", got)
	}
}
