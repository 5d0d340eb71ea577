package agent

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
)

// releaseLoop waits a heartbeat after a request, folds requests that pile
// up into one call, and keeps ReleasePagesEvery between calls.
func TestReleaseLoopWaitsFoldsAndSpacesCalls(t *testing.T) {
	const hb, every = 20 * time.Millisecond, 300 * time.Millisecond
	var mu sync.Mutex
	var calls []time.Time
	a := &Agent{
		cfg: Config{HeartbeatInterval: hb, ReleasePagesEvery: every, ReleaseExecutablePages: func() (uint64, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Now())
			return 0, nil
		}},
		log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		releaseKick: make(chan struct{}, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.releaseLoop(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := func() (int, []time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return len(calls), append([]time.Time(nil), calls...)
	}

	asked := time.Now()
	a.requestPageRelease()
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) { c, _ := n(); return c == 1, "no call after one request" })
	if _, c := n(); c[0].Sub(asked) < hb {
		t.Fatalf("released %s after the request, before one heartbeat interval (%s)", c[0].Sub(asked), hb)
	}

	// A burst of requests right after a call: one more call, spaced.
	for range 5 {
		a.requestPageRelease()
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) { c, _ := n(); return c == 2, "no second call after a burst" })
	_, c := n()
	if gap := c[1].Sub(c[0]); gap < every-every/4 {
		t.Fatalf("second call %s after the first, want about ReleasePagesEvery (%s)", gap, every)
	}
	if len(a.releaseKick) != 0 {
		t.Fatal("the burst left a request pending: it should have been folded into the second call")
	}
}

// Without a release function, requests are no-ops and never block.
func TestRequestPageReleaseWithoutFunc(t *testing.T) {
	a := &Agent{releaseKick: make(chan struct{}, 1)}
	for range 3 {
		a.requestPageRelease()
	}
	if len(a.releaseKick) != 0 {
		t.Fatal("request queued although no release function is set")
	}
}

func TestConfigRejectsNonPositiveReleaseInterval(t *testing.T) {
	c := DefaultConfig()
	c.NodeName, c.Cell, c.DataDir, c.Join, c.Driver = "h1", "a", "/tmp/x", []string{"127.0.0.1:1"}, nopDriver{}
	c.ReleaseExecutablePages = func() (uint64, error) { return 0, nil }
	c.ReleasePagesEvery = 0
	if err := c.Validate(); err == nil {
		t.Fatal("zero ReleasePagesEvery accepted")
	}
}

// nopDriver satisfies slot.Driver for Validate; it is never called.
type nopDriver struct{ slot.Driver }
