// Package testutil holds small helpers shared by tests: waiting for a
// condition with a deadline, and routing logs to the test log.
package testutil

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond until it reports true or timeout passes, then fails
// the test with the last thing cond said. It never sleeps longer than the
// poll interval, so it is a synchronisation point, not a delay.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	WaitForWith(t, timeout, cond, nil)
}

// WaitForWith is WaitFor that, when it fails, adds what more returns
// (logs, events) to the failure; more may be nil.
func WaitForWith(t testing.TB, timeout time.Duration, cond func() (bool, string), more func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	var last string
	for {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			extra := ""
			if more != nil {
				extra = "\n" + more()
			}
			t.Fatalf("condition not met within %s: %s%s", timeout, last, extra)
		}
		time.Sleep(interval)
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

// Receive returns the next value from ch, failing the test when none
// comes within timeout; what names the awaited value in the failure.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing within %s", what, timeout)
		var zero T
		return zero
	}
}

// Collector gathers values handed to Add from any goroutine, for a test
// to read with All.
type Collector[T any] struct {
	mu   sync.Mutex
	vals []T
}

// Add records v; it never fails (its error fits callbacks).
func (c *Collector[T]) Add(v T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vals = append(c.vals, v)
	return nil
}

// All returns a copy of what was added, in order.
func (c *Collector[T]) All() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.vals...)
}

// Logger returns a slog.Logger that writes to t.Log until the test ends
// (later writes are dropped: logging after a test finished panics). Info
// and above by default; ROLLWAVE_TEST_LOG=debug shows everything.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("ROLLWAVE_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	h := &testHandler{t: t, level: level, state: &handlerState{}}
	t.Cleanup(func() {
		h.state.mu.Lock()
		h.state.done = true
		h.state.mu.Unlock()
	})
	return slog.New(h)
}

type handlerState struct {
	mu   sync.Mutex
	done bool
}

type testHandler struct {
	t      testing.TB
	level  slog.Level
	attrs  []slog.Attr
	groups string
	state  *handlerState
}

func (h *testHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *testHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05.000 "))
	b.WriteString(r.Level.String())
	b.WriteString(" ")
	b.WriteString(r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + h.groups + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + h.groups + a.String())
		return true
	})
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if !h.state.done {
		h.t.Log(b.String())
	}
	return nil
}

func (h *testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *testHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = h.groups + name + "."
	return &c
}

// SyncBuffer is an in-memory log sink that goroutines of the code under
// test may write to while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
