package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// flipCheck passes or fails on command.
type flipCheck struct {
	name string
	fail atomic.Pointer[string] // nil: pass
}

func (c *flipCheck) Name() string { return c.name }
func (c *flipCheck) Run(context.Context) error {
	if msg := c.fail.Load(); msg != nil {
		return fmt.Errorf("flip check %s: %s", c.name, *msg)
	}
	return nil
}
func (c *flipCheck) failWith(msg string) { c.fail.Store(&msg) }
func (c *flipCheck) pass()               { c.fail.Store(nil) }

// startTracker starts a tracker on a fake clock without jitter.
func startTracker(t *testing.T, minHealthy time.Duration, checks ...CheckWithInterval) (*Tracker, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(epoch)
	tr, err := NewTracker(TrackerConfig{
		Checks:         checks,
		MinHealthyTime: minHealthy,
		Clock:          clk,
		Logger:         testutil.Logger(t),
		JitterFraction: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.Start(testContext(t))
	t.Cleanup(tr.Stop)
	return tr, clk
}

// waitRuns waits until the tracker has recorded n runs in total.
func waitRuns(t *testing.T, tr *Tracker, n uint64) Status {
	t.Helper()
	var st Status
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		st = tr.Status()
		return st.Runs >= n, fmt.Sprintf("runs %d, want %d", st.Runs, n)
	})
	return st
}

// step advances the clock by d and waits for the n-th run to be recorded.
func step(t *testing.T, tr *Tracker, clk *FakeClock, d time.Duration, n uint64) Status {
	t.Helper()
	clk.Advance(d)
	return waitRuns(t, tr, n)
}

func TestTrackerHealthyAfterMinHealthyTime(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, clk := startTracker(t, 3*time.Second, CheckWithInterval{api, time.Second})

	// The first run happens at Start: passing, but not yet for long enough.
	st := waitRuns(t, tr, 1)
	if st.Healthy || st.HealthyFor != 0 {
		t.Fatalf("after first pass: %+v", st)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		st = step(t, tr, clk, time.Second, uint64(i+2))
		if st.Healthy || st.HealthyFor != want {
			t.Fatalf("at %s: healthy=%v for %s", want, st.Healthy, st.HealthyFor)
		}
	}
	st = step(t, tr, clk, time.Second, 4)
	if !st.Healthy || st.HealthyFor != 3*time.Second || st.Failures != 0 {
		t.Fatalf("after MinHealthyTime: %+v", st)
	}
}

func TestTrackerFailureResets(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, clk := startTracker(t, 2*time.Second, CheckWithInterval{api, time.Second})
	waitRuns(t, tr, 1)
	step(t, tr, clk, time.Second, 2)
	if st := step(t, tr, clk, time.Second, 3); !st.Healthy {
		t.Fatalf("want healthy: %+v", st)
	}

	// One failure: unhealthy at once, with the error recorded.
	api.failWith("status 503")
	st := step(t, tr, clk, time.Second, 4)
	if st.Healthy || st.HealthyFor != 0 || st.Failures != 1 || st.LastError != "flip check api: status 503" {
		t.Fatalf("after failure: %+v", st)
	}
	if !st.LastErrorAt.Equal(epoch.Add(3 * time.Second)) {
		t.Fatalf("LastErrorAt %s", st.LastErrorAt)
	}

	// Recovered: the clock starts again from the first pass.
	api.pass()
	st = step(t, tr, clk, time.Second, 5)
	if st.Healthy || st.HealthyFor != 0 {
		t.Fatalf("first pass after failure: %+v", st)
	}
	if st = step(t, tr, clk, time.Second, 6); st.Healthy {
		t.Fatalf("1s after recovery: %+v", st)
	}
	st = step(t, tr, clk, time.Second, 7)
	if !st.Healthy || st.HealthyFor != 2*time.Second {
		t.Fatalf("2s after recovery: %+v", st)
	}
	// The last failure stays on record after recovery.
	if st.LastError == "" || st.Failures != 1 {
		t.Fatalf("history lost: %+v", st)
	}
}

func TestTrackerAllChecksMustPass(t *testing.T) {
	a := &flipCheck{name: "a"}
	b := &flipCheck{name: "b"}
	b.failWith("down")
	tr, clk := startTracker(t, time.Second,
		CheckWithInterval{a, time.Second}, CheckWithInterval{b, time.Second})
	waitRuns(t, tr, 2)
	st := step(t, tr, clk, time.Second, 4)
	if st.Healthy || !st.Checks[0].Passing || st.Checks[1].Passing || st.Checks[1].LastError != "flip check b: down" {
		t.Fatalf("one failing: %+v", st)
	}
	b.pass()
	step(t, tr, clk, time.Second, 6) // b's streak starts here
	st = step(t, tr, clk, time.Second, 8)
	if !st.Healthy || st.HealthyFor != time.Second {
		t.Fatalf("both passing: %+v", st)
	}
}

// TestTrackerTransitionBetweenRuns: the healthy transition is published
// when MinHealthyTime elapses, not only at the next check run.
func TestTrackerTransitionBetweenRuns(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, clk := startTracker(t, 3*time.Second, CheckWithInterval{api, time.Minute})
	ch, cancel := tr.Subscribe()
	defer cancel()
	waitRuns(t, tr, 1)

	clk.Advance(3 * time.Second)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case st := <-ch:
			if st.Healthy {
				if st.Runs != 1 {
					t.Fatalf("a check ran: %+v", st)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no healthy status published; status now %+v", tr.Status())
		}
	}
}

func TestWaitHealthyDeadlineCarriesLastError(t *testing.T) {
	api := &flipCheck{name: "api"}
	api.failWith("GET http://127.0.0.1:8082/healthz: status 503, want 2xx")
	tr, clk := startTracker(t, time.Second, CheckWithInterval{api, time.Second})
	waitRuns(t, tr, 1)

	done := make(chan error, 1)
	go func() { done <- tr.WaitHealthy(testContext(t), 5*time.Second) }()
	// The check's next run and WaitHealthy's deadline are both armed.
	ctx, cancel := context.WithTimeout(testContext(t), 5*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		step(t, tr, clk, time.Second, uint64(i+2))
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotHealthy) {
			t.Fatalf("want ErrNotHealthy, got %v", err)
		}
		wantErrContains(t, err, "within 5s", "flip check api: GET http://127.0.0.1:8082/healthz: status 503, want 2xx")
	case <-time.After(5 * time.Second):
		t.Fatal("WaitHealthy did not return at its deadline")
	}
}

func TestWaitHealthySucceeds(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, clk := startTracker(t, 2*time.Second, CheckWithInterval{api, time.Second})
	waitRuns(t, tr, 1)
	done := make(chan error, 1)
	go func() { done <- tr.WaitHealthy(testContext(t), time.Minute) }()
	step(t, tr, clk, time.Second, 2)
	step(t, tr, clk, time.Second, 3)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitHealthy did not return; status %+v", tr.Status())
	}
}

func TestWaitHealthyStopped(t *testing.T) {
	api := &flipCheck{name: "api"}
	api.failWith("down")
	tr, _ := startTracker(t, time.Second, CheckWithInterval{api, time.Second})
	waitRuns(t, tr, 1)
	done := make(chan error, 1)
	go func() { done <- tr.WaitHealthy(context.Background(), 0) }()
	tr.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTrackerStopped) {
			t.Fatalf("got %v", err)
		}
		wantErrContains(t, err, "flip check api: down")
	case <-time.After(5 * time.Second):
		t.Fatal("WaitHealthy did not return after Stop")
	}
	// Subscribing after Stop yields a closed channel.
	ch, cancel := tr.Subscribe()
	defer cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Stop")
	}
	tr.Stop() // idempotent
}

// TestTrackerStartContextEnds: cancelling Start's context stops the
// tracker like Stop does.
func TestTrackerStartContextEnds(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, err := NewTracker(TrackerConfig{
		Checks: []CheckWithInterval{{api, time.Second}}, Clock: NewFakeClock(epoch), Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, unsubscribe := tr.Subscribe()
	defer unsubscribe()
	tr.Start(ctx)
	waitRuns(t, tr, 1)
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				tr.Stop()
				return
			}
		case <-deadline:
			t.Fatal("subscription not closed after the Start context ended")
		}
	}
}

func TestWaitHealthyContextCancelled(t *testing.T) {
	api := &flipCheck{name: "api"}
	api.failWith("down")
	tr, _ := startTracker(t, time.Second, CheckWithInterval{api, time.Second})
	waitRuns(t, tr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tr.WaitHealthy(ctx, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	wantErrContains(t, err, "down")
}

func TestTrackerNoChecks(t *testing.T) {
	tr, clk := startTracker(t, 5*time.Second)
	if tr.Status().Healthy {
		t.Fatal("healthy before MinHealthyTime")
	}
	clk.Advance(5 * time.Second)
	if st := tr.Status(); !st.Healthy || st.HealthyFor != 5*time.Second {
		t.Fatalf("%+v", st)
	}
}

func TestTrackerCheckPanics(t *testing.T) {
	c := NewFuncCheck("bad", func(context.Context) error { panic("nil map") })
	tr, _ := startTracker(t, 0, CheckWithInterval{c, time.Second})
	st := waitRuns(t, tr, 1)
	if st.Healthy || st.Failures != 1 {
		t.Fatalf("%+v", st)
	}
	wantErrContains(t, errors.New(st.LastError), "check bad panicked: nil map")
}

// TestSubscribeCoalesces: a subscriber that never reads does not block
// the tracker, and then sees only the latest status.
func TestSubscribeCoalesces(t *testing.T) {
	api := &flipCheck{name: "api"}
	tr, clk := startTracker(t, 0, CheckWithInterval{api, time.Second})
	ch, cancel := tr.Subscribe()
	waitRuns(t, tr, 1)
	for i := range 10 {
		step(t, tr, clk, time.Second, uint64(i+2))
	}
	if st := <-ch; st.Runs != 11 {
		t.Fatalf("coalesced status has %d runs, want 11", st.Runs)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	cancel() // idempotent
}

func TestTrackerRealClock(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	c, err := NewHTTPCheck(HTTPConfig{Name: "api", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker(TrackerConfig{
		Checks:         []CheckWithInterval{{c, 10 * time.Millisecond}},
		MinHealthyTime: 30 * time.Millisecond,
		Logger:         testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.Start(testContext(t))
	defer tr.Stop()
	if err := tr.WaitHealthy(testContext(t), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestTrackerConfigValidate(t *testing.T) {
	ok := NewFuncCheck("a", func(context.Context) error { return nil })
	tests := []struct {
		name string
		cfg  TrackerConfig
		want string
	}{
		{"zero interval", TrackerConfig{Checks: []CheckWithInterval{{ok, 0}}}, "check a: interval 0s must be positive"},
		{"nil check", TrackerConfig{Checks: []CheckWithInterval{{nil, time.Second}}}, "Checks[0]: Check is nil"},
		{"duplicate", TrackerConfig{Checks: []CheckWithInterval{{ok, time.Second}, {ok, time.Second}}}, `"a" used twice`},
		{"negative min", TrackerConfig{MinHealthyTime: -1}, "MinHealthyTime"},
		{"jitter", TrackerConfig{JitterFraction: 2}, "JitterFraction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTracker(tc.cfg)
			wantErrContains(t, err, tc.want)
		})
	}
}
