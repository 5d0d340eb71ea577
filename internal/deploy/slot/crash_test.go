//go:build linux

package slot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// crashPoints runs a normal swap v1 → v2 and a revert, recording every
// crash point they pass. The crash test iterates over this list, so a step
// added to Swap or Revert is covered without touching the test.
func crashPoints(t *testing.T) []string { return crashPointsOf(t, nil) }

// crashPointsOf is crashPoints with the v2 spec changed by mod (nil: as
// it is).
func crashPointsOf(t *testing.T, mod func(*rollwavev1.ReleaseSpec)) []string {
	e := newEnv(t)
	e.mustSwap(1, "v1")
	var mu sync.Mutex
	var points []string
	e.m.crashPoint = func(p string) error {
		mu.Lock()
		points = append(points, p)
		mu.Unlock()
		return nil
	}
	spec := e.spec("v2")
	if mod != nil {
		mod(spec)
	}
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Revert(context.Background(), testApp, "record", false); err != nil {
		t.Fatal(err)
	}
	return points
}

func TestCrashPointsCoverEveryStep(t *testing.T) {
	t.Parallel()
	points := crashPoints(t)
	var want []string
	for _, s := range []string{StepStage, StepInstall, StepStart, StepReady, StepSwitch, StepKeepOld} {
		want = append(want, "swap/"+s+"/begin", "swap/"+s+"/done")
	}
	for _, s := range []string{StepStartOld, StepSwitchBack, StepStopNew} {
		want = append(want, "revert/"+s+"/begin", "revert/"+s+"/done")
	}
	if !slices.Equal(points, want) {
		t.Fatalf("crash points\n got %q\nwant %q", points, want)
	}
}

// TestCrashRecovery kills the agent (manager and process driver) at every
// step boundary of Swap and Revert, starts a new one on the same data dir,
// reconciles, and checks that the host serves exactly one slot: the one
// the state file calls active, answering with its version.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	points := crashPoints(t)
	for _, keepOld := range []string{"hot", "cold"} {
		for _, point := range points {
			t.Run(keepOld+"/"+strings.ReplaceAll(point, "/", "_"), func(t *testing.T) {
				t.Parallel()
				crashAt(t, point, keepOld, nil)
			})
		}
	}
}

// passingHooks gives a spec every lifecycle hook, each exiting 0.
func passingHooks(spec *rollwavev1.ReleaseSpec) {
	for _, n := range []string{StepPreSwitch, StepPostSwitch, StepDrain, StepPreRevert, StepPostRevert} {
		spec.Hooks = append(spec.Hooks, &rollwavev1.HookSpec{Name: n, Exec: []string{"/bin/true"}, TimeoutMs: 10_000})
	}
}

// The hooks are steps like the others: the state file records them and
// a crash at either side of one recovers. A crash in post_switch (no
// verdict) reverts the host.
func TestCrashRecoveryWithHooks(t *testing.T) {
	t.Parallel()
	points := crashPointsOf(t, passingHooks)
	var want []string
	for _, s := range []string{StepStage, StepInstall, StepStart, StepReady, StepPreSwitch, StepSwitch, StepPostSwitch, StepKeepOld} {
		want = append(want, "swap/"+s+"/begin", "swap/"+s+"/done")
	}
	for _, s := range []string{StepPreRevert, StepStartOld, StepSwitchBack, StepPostRevert, StepStopNew} {
		want = append(want, "revert/"+s+"/begin", "revert/"+s+"/done")
	}
	if !slices.Equal(points, want) {
		t.Fatalf("crash points\n got %q\nwant %q", points, want)
	}
	for _, keepOld := range []string{"hot", "cold"} {
		for _, point := range points {
			if !strings.Contains(point, "switch/") && !strings.Contains(point, "_revert/") && !strings.Contains(point, "keep_old/") {
				continue // the steps without hooks are covered by TestCrashRecovery
			}
			t.Run(keepOld+"/"+strings.ReplaceAll(point, "/", "_"), func(t *testing.T) {
				t.Parallel()
				crashAt(t, point, keepOld, passingHooks)
			})
		}
	}
}

func crashAt(t *testing.T, point, keepOld string, mod func(*rollwavev1.ReleaseSpec)) {
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	if mod != nil {
		mod(spec)
	}
	spec.Slots.KeepOld = keepOld
	hit := e.crashAt(point)
	var err error
	if strings.HasPrefix(point, "swap/") {
		err = e.swap(2, spec)
	} else {
		if err := e.swap(2, spec); err != nil {
			t.Fatal(err)
		}
		err = e.m.Revert(context.Background(), testApp, "ordered", false)
	}
	if !*hit || !errors.Is(err, errTestCrash) {
		t.Fatalf("crash point %s not hit (hit=%v, err=%v)", point, *hit, err)
	}

	e.killAndReconcile()

	st := e.state()
	if st.Op != nil {
		t.Fatalf("operation still in flight after reconcile: %+v", *st.Op)
	}
	wantActive := Blue // rolled back, or reverted
	if point == "swap/switch/done" || point == "swap/post_switch/done" || strings.HasPrefix(point, "swap/keep_old/") {
		wantActive = Green // switched: the new slot keeps baking
	}
	if st.Active != wantActive {
		t.Fatalf("active = %s, want %s (state %+v)", st.Active, wantActive, st)
	}
	if got := e.running(); !slices.Equal(got, []Name{st.Active}) {
		t.Fatalf("running slots = %v, want exactly [%s]", got, st.Active)
	}
	// The slot's process was just started: wait for it to listen (a
	// loaded machine may take a moment) rather than assume it does.
	waitBody(t, e.proxyAddr(), st.Slots[st.Active].Version)
	r, _ := st.LastResult()
	t.Logf("after crash at %s: active %s, generation %d %s (%s)", point, st.Active, r.Generation, r.State, r.Reason)

	// The host is usable afterwards: reconcile again changes nothing, and
	// a revert or a new generation works from here.
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	if got := e.running(); !slices.Equal(got, []Name{st.Active}) {
		t.Fatalf("running slots after a second reconcile = %v", got)
	}
	e.mustSwap(3, "v3")
	mustBody(t, e.proxyAddr(), "v3")
}

// crashAt makes the manager "die" at point; the flag says it got there.
func (e *env) crashAt(point string) *bool {
	hit := new(bool)
	e.m.crashPoint = func(p string) error {
		if p == point {
			*hit = true
			return fmt.Errorf("%w at %s", errTestCrash, p)
		}
		return nil
	}
	return hit
}

// killAndReconcile is kill -9 of the agent (the proxy socket closes,
// Pdeathsig kills the slot processes), a new one on the same data dir, and
// its start-up reconcile.
func (e *env) killAndReconcile() {
	e.t.Helper()
	e.m.Close()
	e.drv.kill()
	e.restart(newTestDriver(e.t))
	if err := e.m.Reconcile(context.Background()); err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
}

// An agent stopping in the middle of a swap (its context cancelled while
// the new slot's readiness is checked) is not a failed swap: nothing is
// recorded as FAILED, and after the restart the same generation is swapped
// again and completes.
func TestSwapInterruptedByShutdownIsRedoneAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopping := func(ctx context.Context, port int) error {
		cancel() // the agent is told to stop while it waits for readiness
		<-ctx.Done()
		return fmt.Errorf("waiting for health: %w", ctx.Err())
	}
	err := e.m.Swap(ctx, assignment(2, "v2"), spec, stopping)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("swap cancelled by shutdown returned %v, want ErrInterrupted", err)
	}
	for _, s := range e.prog.states(2) {
		if s == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED {
			t.Fatalf("a shutdown was reported as a failed swap: %v", e.prog.states(2))
		}
	}
	if st := e.state(); st.Op == nil || st.PhaseState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED {
		t.Fatalf("interrupted swap should stay recorded as in flight, got op %+v phase %s", st.Op, st.Phase)
	}

	e.m.Close()
	e.drv.kill()
	e.restart(newTestDriver(t))
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	st := e.state()
	if st.Active != Blue || st.Resume != StepReady || st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING {
		t.Fatalf("after restart: active %s resume %q phase %s; want blue, %q, STAGING", st.Active, st.Resume, st.Phase, StepReady)
	}
	waitBody(t, e.proxyAddr(), "v1")

	if err := e.swap(2, spec); err != nil {
		t.Fatalf("redo of the interrupted generation: %v", err)
	}
	st = e.state()
	if st.Active != Green || st.Resume != "" || st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING {
		t.Fatalf("after the redo: active %s resume %q phase %s; want green, none, BAKING", st.Active, st.Resume, st.Phase)
	}
	waitBody(t, e.proxyAddr(), "v2")
}

// A revert with a readiness check counts only when the old slot passes
// it: a failing check leaves traffic on the new slot with FAILED and the
// reason, and a later attempt whose check passes completes the revert.
func TestRevertCheckedNeedsTheOldSlotHealthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sick := func(context.Context, int) error { return errors.New("healthz: 503") }
	err := e.m.RevertChecked(ctx, testApp, "ordered", false, sick)
	if err == nil {
		t.Fatal("revert with a failing old slot succeeded")
	}
	st := e.state()
	r, _ := st.LastResult()
	if st.Active != Green || r.AssignmentState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED || !strings.Contains(r.Reason, "health checks") {
		t.Fatalf("after a failed revert: active %s, %s %q; want green, FAILED naming the health checks", st.Active, r.State, r.Reason)
	}
	waitBody(t, e.proxyAddr(), "v2")
	if err := e.m.RevertChecked(ctx, testApp, "ordered", false, httpReady); err != nil {
		t.Fatalf("retried revert: %v", err)
	}
	if st := e.state(); st.Active != Blue || st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED {
		t.Fatalf("after the retry: active %s phase %s", st.Active, st.Phase)
	}
	waitBody(t, e.proxyAddr(), "v1")
}
