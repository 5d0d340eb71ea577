package agent

import (
	"sync/atomic"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when the test says so.
type manualClock struct{ mono atomic.Int64 }

func (c *manualClock) Now() time.Time                  { return time.Unix(0, 0).Add(c.Mono()) }
func (c *manualClock) Mono() time.Duration             { return time.Duration(c.mono.Load()) }
func (c *manualClock) set(d time.Duration)             { c.mono.Store(int64(d)) }
func (c *manualClock) advance(d time.Duration)         { c.mono.Add(int64(d)) }
func (c *manualClock) at(d time.Duration) *manualClock { c.set(d); return c }

// fakeProbe is a contactProbe whose classify blocks until the test answers
// it, and which tells the test when it starts and ends.
type fakeProbe struct {
	*contactProbe
	started chan time.Duration // the clock when classify was called
	answer  chan contactVerdict
	ended   chan struct{}
}

func newFakeProbe(clock *manualClock) *fakeProbe {
	f := &fakeProbe{started: make(chan time.Duration, 8), answer: make(chan contactVerdict), ended: make(chan struct{}, 8)}
	f.contactProbe = &contactProbe{clock: clock,
		classify: func() contactVerdict {
			f.started <- clock.Mono()
			return <-f.answer
		},
		done: func() { f.ended <- struct{}{} },
	}
	return f
}

// wait is the test's guard against a hang, never a delay: each receive
// returns as soon as the probe goroutine gets there.
const wait = 10 * time.Second

func (f *fakeProbe) expectStart(t *testing.T) time.Duration {
	t.Helper()
	select {
	case at := <-f.started:
		return at
	case <-time.After(wait):
		t.Fatal("no probe started")
		return 0
	}
}

func (f *fakeProbe) finish(t *testing.T, v contactVerdict) {
	t.Helper()
	select {
	case f.answer <- v:
	case <-time.After(wait):
		t.Fatal("no probe to answer")
	}
	select {
	case <-f.ended:
	case <-time.After(wait):
		t.Fatal("the probe did not report its end")
	}
}

func (f *fakeProbe) expectNoStart(t *testing.T) {
	t.Helper()
	select {
	case at := <-f.started:
		t.Fatalf("a probe started at %s; none expected", at)
	default:
	}
}

func TestWatchdogSchedule(t *testing.T) {
	const s = time.Second
	const lead = 1250 * time.Millisecond
	cases := []struct {
		name                string
		lastAck, now, limit time.Duration
		want                watch
	}{
		{"fresh ack: wake when the probe is due", 10 * s, 10 * s, 5 * s, watch{wake: 3750 * time.Millisecond}},
		{"probe due: start it, wake at the timeout", 10 * s, 13750 * time.Millisecond, 5 * s, watch{probe: true, probeFrom: 13750 * time.Millisecond, wake: 1250 * time.Millisecond}},
		{"one ns before the timeout: no decision", 10 * s, 15*s - 1, 5 * s, watch{probe: true, probeFrom: 13750 * time.Millisecond, wake: 1}},
		{"at the timeout: decide from the probe started lead before", 10 * s, 15 * s, 5 * s, watch{probe: true, probeFrom: 13750 * time.Millisecond, freshFrom: 15*s - 2*lead, decide: true}},
		{"long after (a hold): only evidence younger than maxAge", 10 * s, 40 * s, 5 * s, watch{probe: true, probeFrom: 13750 * time.Millisecond, freshFrom: 40*s - 2*lead, decide: true}},
		{"timeout shorter than the probe: probe from the last ack", 10 * s, 10 * s, s, watch{probe: true, probeFrom: 10 * s, wake: s}},
	}
	for _, c := range cases {
		if got := watchdog(c.lastAck, c.now, c.limit, lead, 2*lead); got != c.want {
			t.Errorf("%s: watchdog(ack %s, now %s, limit %s) = %+v, want %+v", c.name, c.lastAck, c.now, c.limit, got, c.want)
		}
	}
}

// watchStep is one pass of the contact part of plan, on the fake clock:
// what the watchdog says, and the verdict when it decides.
func watchStep(p *contactProbe, lastAck, now, limit, lead time.Duration) (watch, contactVerdict, bool) {
	w := watchdog(lastAck, now, limit, lead, 2*lead)
	if !w.probe {
		return w, contactVerdict{}, false
	}
	v, ok := p.verdict(w.probeFrom, w.freshFrom)
	return w, v, ok && w.decide
}

// The decision lands at isolation_timeout itself: the probe is started
// lead before it (its pings in flight while the silence runs out) and the
// watchdog wakes at the exact deadline, not at a coarse tick.
func TestIsolationDecidedAtTheTimeout(t *testing.T) {
	clock := new(manualClock)
	f := newFakeProbe(clock)
	const limit, lead = 5 * time.Second, 1250 * time.Millisecond
	lastAck := 2 * time.Second

	w, _, decided := watchStep(f.contactProbe, lastAck, clock.at(3*time.Second).Mono(), limit, lead)
	f.expectNoStart(t)
	if decided || w.wake != 2750*time.Millisecond {
		t.Fatalf("1 s after the ack: %+v decided=%v; want only a wake-up in 2.75 s", w, decided)
	}
	clock.advance(w.wake) // the watchdog's timer fires
	w, _, decided = watchStep(f.contactProbe, lastAck, clock.Mono(), limit, lead)
	if at := f.expectStart(t); at != lastAck+limit-lead {
		t.Fatalf("probe started at %s; want %s (isolation_timeout - probe duration after the ack)", at, lastAck+limit-lead)
	}
	if decided {
		t.Fatal("decided before isolation_timeout")
	}
	clock.advance(time.Second) // the pings go unanswered
	f.finish(t, contactVerdict{evidence: "isolated: no coordinator and no gossip peer answers a gossip ping"})
	if _, _, decided = watchStep(f.contactProbe, lastAck, clock.Mono(), limit, lead); decided {
		t.Fatalf("decided at %s, before isolation_timeout (%s)", clock.Mono()-lastAck, limit)
	}
	clock.set(lastAck + limit) // the timer armed for the deadline fires
	_, v, decided := watchStep(f.contactProbe, lastAck, clock.Mono(), limit, lead)
	if !decided || v.controlPlaneDown {
		t.Fatalf("at isolation_timeout: decided=%v verdict %+v; want the isolated verdict", decided, v)
	}
	f.expectNoStart(t)
}

// A probe still out at the timeout delays the decision to its end; it
// never lets the decision come before the timeout.
func TestIsolationWaitsForALateProbe(t *testing.T) {
	clock := new(manualClock)
	f := newFakeProbe(clock)
	const limit, lead = 5 * time.Second, 1250 * time.Millisecond
	clock.set(limit - lead)
	watchStep(f.contactProbe, 0, clock.Mono(), limit, lead)
	f.expectStart(t)
	clock.set(limit + 300*time.Millisecond) // a loaded host: the pings took longer
	if _, _, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); decided {
		t.Fatal("decided without the probe's verdict")
	}
	f.expectNoStart(t) // the running one is waited for, not doubled
	f.finish(t, contactVerdict{evidence: "isolated"})
	if _, _, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); !decided {
		t.Fatal("no decision after the probe ended")
	}
}

// Evidence gathered before an ack does not count for the silence after
// it: an ack in the middle of the probe moves the deadline and the next
// decision needs a fresh probe started inside the new silence.
func TestAckDuringProbeVoidsItsEvidence(t *testing.T) {
	clock := new(manualClock)
	f := newFakeProbe(clock)
	const limit, lead = 5 * time.Second, 1250 * time.Millisecond
	clock.set(limit - lead)
	watchStep(f.contactProbe, 0, clock.Mono(), limit, lead)
	first := f.expectStart(t)
	f.finish(t, contactVerdict{evidence: "isolated"})
	ack := limit - 500*time.Millisecond // an ack arrived just before the timeout
	clock.set(limit)
	if w, _, decided := watchStep(f.contactProbe, ack, clock.Mono(), limit, lead); decided || w.probe {
		t.Fatalf("at the old deadline after an ack: %+v decided=%v; want nothing until the new probe time", w, decided)
	}
	clock.set(ack + limit)
	if _, _, decided := watchStep(f.contactProbe, ack, clock.Mono(), limit, lead); decided {
		t.Fatalf("decided on evidence from a probe started at %s, before the ack at %s", first, ack)
	}
	if at := f.expectStart(t); at < ack {
		t.Fatalf("new probe started at %s, before the ack at %s", at, ack)
	}
	f.finish(t, contactVerdict{controlPlaneDown: true, evidence: "control plane down"})
	if _, v, decided := watchStep(f.contactProbe, ack, clock.Mono(), limit, lead); !decided || !v.controlPlaneDown {
		t.Fatalf("decided=%v %+v; want the new probe's verdict", decided, v)
	}
}

// In a long silence (a hold) a verdict ages out: older than maxAge it is
// probed again before any decision rests on it.
func TestOldEvidenceIsProbedAgain(t *testing.T) {
	clock := new(manualClock)
	f := newFakeProbe(clock)
	const limit, lead = 5 * time.Second, 1250 * time.Millisecond
	clock.set(limit - lead)
	watchStep(f.contactProbe, 0, clock.Mono(), limit, lead)
	f.expectStart(t)
	f.finish(t, contactVerdict{controlPlaneDown: true, evidence: "control plane down"})
	clock.set(limit - lead + 2*lead - lead/2) // ended less than maxAge ago
	if _, _, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); !decided {
		t.Fatal("evidence younger than maxAge was not used")
	}
	f.expectNoStart(t)
	clock.set(limit + 10*time.Second)
	if _, _, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); decided {
		t.Fatal("decided on evidence 11 s old")
	}
	if at := f.expectStart(t); at != limit+10*time.Second {
		t.Fatalf("re-probe started at %s", at)
	}
	f.finish(t, contactVerdict{evidence: "isolated"})
	if _, v, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); !decided || v.controlPlaneDown {
		t.Fatalf("decided=%v %+v; want the fresh isolated verdict", decided, v)
	}
}

// A probe slower than maxAge (a loaded host) still decides: freshness
// counts from its end, so re-probing cannot go on for ever.
func TestSlowProbeStillDecides(t *testing.T) {
	clock := new(manualClock)
	f := newFakeProbe(clock)
	const limit, lead = 5 * time.Second, 1250 * time.Millisecond
	clock.set(limit)
	watchStep(f.contactProbe, 0, clock.Mono(), limit, lead)
	f.expectStart(t)
	clock.advance(3 * lead) // longer than maxAge (2 × lead)
	f.finish(t, contactVerdict{evidence: "isolated"})
	if _, _, decided := watchStep(f.contactProbe, 0, clock.Mono(), limit, lead); !decided {
		t.Fatal("a probe that took longer than maxAge never yields a decision")
	}
	f.expectNoStart(t)
}
