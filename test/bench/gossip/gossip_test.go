package gossipbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("1000 2000,3000")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[2] != 3000 {
		t.Fatalf("ParseSizes: %v %v", got, err)
	}
	for _, bad := range []string{"", "  ", "10x", "-5", "0"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) should fail", bad)
		}
	}
}

// The counter adds the lines rollwave's log adapter held back.
func TestRefuteCounter(t *testing.T) {
	h := &refuteCounter{}
	log := slog.New(h).With("component", "gossip")
	log.Warn("Refuting a suspect message (from: a1)", "source", "memberlist")
	log.Warn("Refuting a suspect message (from: a2)", "source", "memberlist", "similar_lines_suppressed", 4)
	log.Warn("Refuting a dead message (from: a3)", "source", "memberlist")
	log.Error("Failed fallback TCP ping: timeout", "source", "memberlist")
	log.Info("Refuting a suspect message (ignored: below warn)")
	log.Debug("Failed UDP ping: agent-00007 (timeout reached)", "source", "memberlist")
	log.Debug("Initiating push/pull sync with: agent-00003 127.0.0.1:4000", "source", "memberlist")
	if s, d, o := h.suspect.Load(), h.dead.Load(), h.other.Load(); s != 6 || d != 1 || o != 1 {
		t.Fatalf("suspect %d dead %d other %d, want 6 1 1", s, d, o)
	}
	if pt := h.probeTimeouts.Load(); pt != 1 {
		t.Fatalf("probe timeouts %d, want 1", pt)
	}
	if len(h.samples) != 1 || !strings.HasPrefix(h.samples[0], "Failed fallback") {
		t.Fatalf("samples %q", h.samples)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Run(ctx, Options{N: 0}); err == nil || !strings.Contains(err.Error(), "N 0") {
		t.Fatalf("N=0: %v", err)
	}
	if _, err := Run(ctx, Options{N: 5, Profile: "nope"}); err == nil || !strings.Contains(err.Error(), `unknown profile "nope"`) {
		t.Fatalf("bad profile: %v", err)
	}
	if _, err := Run(ctx, Options{N: 5, RampPace: 1.5}); err == nil || !strings.Contains(err.Error(), "RampPace 1.5") {
		t.Fatalf("RampPace 1.5: %v", err)
	}
	if err := CheckBin("/nonexistent/rollwave"); err == nil {
		t.Fatal("CheckBin should fail for a missing binary")
	}
}

// A run that did not settle, or stopped before a measurement, prints no
// figure for it (a crash row once read "0 s") and lists what is missing.
func TestTableRefusesUnmeasuredFigures(t *testing.T) {
	var b strings.Builder
	unsettled := &Result{N: 1000, Profile: "lan", Joined: 1000, RampSeconds: 80,
		Unsettled: "12 of 1000 agents lacked 3.0 alive members on average"}
	TableRows(&b, unsettled)
	out := b.String()
	if !strings.Contains(out, "NOT SETTLED") || !strings.Contains(out, "12 of 1000 agents lacked") || strings.Contains(out, "crash") {
		t.Fatalf("unsettled table:\n%s", out)
	}
	if m := unsettled.Missing(); len(m) != 1 || !strings.HasPrefix(m[0], "not settled") {
		t.Fatalf("unsettled Missing %q", m)
	}

	stopped := &Result{N: 1000, Profile: "lan", Joined: 1000, RampSeconds: 80,
		Join:  Spread{Reached: 1000, Expected: 1000},
		Leave: Spread{Reached: 990, Expected: 1000},
		Idle:  Window{Seconds: 15}}
	b.Reset()
	TableRows(&b, stopped)
	out = b.String()
	if !strings.Contains(out, "crash → every member  not measured") && !strings.Contains(out, "crash → every member\tnot measured") {
		t.Fatalf("crash row should read not measured:\n%s", out)
	}
	if strings.Contains(out, "load") && strings.Contains(out, "all cores busy") {
		t.Fatalf("no load window was run:\n%s", out)
	}
	m := stopped.Missing()
	if len(m) != 2 || m[0] != "leave: 990 of 1000 members saw it" || m[1] != "crash: not measured" {
		t.Fatalf("Missing %q", m)
	}
	stopped.Crash = Spread{Reached: 999, Expected: 999}
	stopped.Leave.Reached = 1000
	if m := stopped.Missing(); m != nil {
		t.Fatalf("complete run: Missing %q", m)
	}
}

// testBench is a bench without coordinators: one in-process pool stands in
// for the seeds.
func testBench(t *testing.T, n int, opt Options) *bench {
	t.Helper()
	opt.N, opt.JoinParallel = n, 8
	b := &bench{opt: opt, log: slog.New(slog.NewTextHandler(io.Discard, nil)), refutes: &refuteCounter{}, ctr: installSink(),
		gone: map[string]bool{}, down: map[int]bool{}}
	seed, err := b.newAgent("seed", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.extra = append(b.extra, seed)
	b.seeds = []string{seed.pool.LocalAddr()}
	t.Cleanup(b.teardown)
	return b
}

// The paced ramp joins every agent in batches, waits after each but the
// last, and leaves a pool in which every agent sees every member.
func TestPacedRampBuildsThePool(t *testing.T) {
	b := testBench(t, 20, Options{RampPace: 0.9, RampBatchTimeout: 20 * time.Second})
	res := &Result{}
	if err := b.ramp(t.Context(), res); err != nil {
		t.Fatalf("ramp: %v", err)
	}
	if got := b.joined.Load(); got != 20 {
		t.Fatalf("joined %d, want 20", got)
	}
	if res.RampBatches != 3 || res.RampWait.N != 2 || res.RampWait.Max < float64(paceStep.Milliseconds()) || res.RampPace != 0.9 {
		t.Fatalf("batches %d, waits %+v, pace %g: want 3 batches (8, 8, 4), 2 waits of at least one %v sample, pace 0.9",
			res.RampBatches, res.RampWait, res.RampPace, paceStep)
	}
	if why, err := b.settle(t.Context(), 21, time.Minute); err != nil || why != "" {
		t.Fatalf("settle: %q %v", why, err)
	}
}

// A member whose probes go unanswered (its only peer crashed) holds the
// ramp until the batch's deadline; the hold is counted, not hidden.
func TestPaceHoldsWhileAMemberIsUnhealthy(t *testing.T) {
	b := testBench(t, 1, Options{RampPace: 1, RampBatchTimeout: 2 * time.Second})
	a, err := b.newAgent("agent-0", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.agents = []*agent{a}
	if _, err := a.pool.Join(t.Context(), b.seeds); err != nil {
		t.Fatalf("join: %v", err)
	}
	res := &Result{}
	if w, err := b.pace(t.Context(), 1, res); err != nil || res.RampHeld != 0 || w > 5*time.Second {
		t.Fatalf("healthy pool: waited %v, held %d, err %v; want one sample", w, res.RampHeld, err)
	}
	_ = b.extra[0].pool.Shutdown() // the seed crashes
	testutil.WaitFor(t, time.Minute, func() (bool, string) {
		return a.pool.HealthScore() > 0, fmt.Sprintf("health %d", a.pool.HealthScore())
	})
	w, err := b.pace(t.Context(), 1, res)
	if err != nil || res.RampHeld != 1 || res.RampHeldHealth == 0 || res.RampPaceTimeouts != 1 || w < 2*time.Second || res.RampMaxHealth == 0 {
		t.Fatalf("unhealthy member: waited %v, %+v, err %v; want held until the 2 s deadline", w, res, err)
	}
}
