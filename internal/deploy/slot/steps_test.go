package slot

import (
	"context"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// countVersions fetches / n times over fresh connections and counts each
// body.
func countVersions(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		body, err := get(addr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSpace(body)]++
	}
	return out
}

// A swap with traffic.steps applies the first weight (old slot hot for
// the rest); SetWeight moves it, persisted, and survives an agent
// restart; a revert sends everything back at once; Facts report it.
func TestWeightedSwapStepsRevertAndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Traffic.Steps, spec.Traffic.StepTimeMs = []int32{10, 50, 100}, 1000
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	st := e.state()
	if st.Split == nil || st.Split.Weight != 10 || st.Active != Green || st.From != Blue {
		t.Fatalf("after the weighted swap: %+v split %+v", st, st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 200); got["v2"] != 20 || got["v1"] != 180 {
		t.Fatalf("weight 10: %v", got)
	}
	if f := e.m.Facts(); len(f) != 1 || f[0].TrafficWeight != 10 {
		t.Fatalf("facts %v", f)
	}
	ctx := context.Background()
	for _, bad := range []int{0, 101} {
		if err := e.m.SetWeight(ctx, testApp, 2, bad); err == nil {
			t.Fatalf("SetWeight(%d) accepted", bad)
		}
	}
	if err := e.m.SetWeight(ctx, testApp, 1, 50); err == nil {
		t.Fatal("SetWeight of an old generation accepted")
	}
	if err := e.m.SetWeight(ctx, testApp, 2, 50); err != nil {
		t.Fatal(err)
	}
	// The agent restarts mid-step: the split comes back as it was.
	e.m.Close()
	e.restart(e.drv)
	if err := e.m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.state(); st.Split == nil || st.Split.Weight != 50 {
		t.Fatalf("after restart: split %+v", st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 200); got["v2"] != 100 || got["v1"] != 100 {
		t.Fatalf("weight 50 after restart: %v", got)
	}
	// A failed step: the revert points everything at the old slot.
	if err := e.m.Revert(ctx, testApp, "traffic step 50% failed", false); err != nil {
		t.Fatal(err)
	}
	if st := e.state(); st.Split != nil || st.Active != Blue || st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED {
		t.Fatalf("after revert: active %s split %+v phase %s", st.Active, st.Split, st.Phase)
	}
	if got := countVersions(t, e.proxyAddr(), 50); got["v1"] != 50 {
		t.Fatalf("after revert: %v", got)
	}
	if err := e.m.SetWeight(ctx, testApp, 2, 100); err == nil {
		t.Fatal("SetWeight after a revert accepted")
	}
}

// Weight 100 ends the steps: everything on the new slot.
func TestWeightedSwapReaches100(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Traffic.Steps = []int32{50, 100}
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetWeight(context.Background(), testApp, 2, 100); err != nil {
		t.Fatal(err)
	}
	if st := e.state(); st.Split != nil || st.Weight() != 100 {
		t.Fatalf("split %+v", st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 20); got["v2"] != 20 {
		t.Fatalf("at 100: %v", got)
	}
	if err := e.m.Finalize(context.Background(), testApp, 2); err != nil {
		t.Fatal(err)
	}
}

// phases.dark: the switch step leaves every user on the old slot (a
// split of weight 0) with the new slot running; the state, facts and the
// switch evidence say so, an agent restart keeps it dark, and SetWeight
// ends it (here into the first weighted step).
func TestDarkSwapKeepsUsersOnTheOldSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Phases = &rollwavev1.PhasesSpec{DarkMs: 60_000}
	spec.Traffic.Steps = []int32{25, 100}
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	st := e.state()
	if st.Split == nil || !st.Split.Dark || st.Split.Weight != 0 || st.Active != Green || st.From != Blue || st.Weight() != 0 {
		t.Fatalf("after the dark swap: active %s from %s split %+v", st.Active, st.From, st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 100); got["v1"] != 100 {
		t.Fatalf("dark: users reached %v", got)
	}
	if f := e.m.Facts(); len(f) != 1 || !f[0].Dark || f[0].TrafficWeight != 0 || f[0].Shadow {
		t.Fatalf("facts %v", f)
	}
	if ev := SwitchEvidence(&st, Blue, Green); ev[EvidenceDark] != "true" || ev[EvidenceWeight] != "0" {
		t.Fatalf("switch evidence %v", ev)
	}
	ctx := context.Background()
	e.m.Close()
	e.restart(e.drv)
	if err := e.m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.state(); st.Split == nil || !st.Split.Dark {
		t.Fatalf("after restart: split %+v", st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 100); got["v1"] != 100 {
		t.Fatalf("dark after restart: users reached %v", got)
	}
	if err := e.m.SetWeight(ctx, testApp, 2, 25); err != nil {
		t.Fatal(err)
	}
	if st := e.state(); st.Split == nil || st.Split.Dark || st.Split.Weight != 25 {
		t.Fatalf("after the dark phase: split %+v", st.Split)
	}
	if got := countVersions(t, e.proxyAddr(), 100); got["v2"] != 25 {
		t.Fatalf("weight 25 after dark: %v", got)
	}
}
