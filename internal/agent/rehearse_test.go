package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func rehearseOrder(app string, gen uint64, maxMS int64) *rollwavev1.CoordinatorMessage {
	return &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Rehearse{
		Rehearse: &rollwavev1.RehearseOrder{App: app, Generation: gen, MaxRollbackTimeMs: maxMS}}}
}

// A rehearse order on a baking host rolls it back and forward for real
// (cold old slot: started, checked, stopped again), records the result in
// the slot state and the metric, and leaves the bake as it was. Orders it
// cannot take are refused with the reason.
func TestRehearseOrder(t *testing.T) {
	f := newFleet(t)
	f.v1()
	gen := f.releaseWith("demo-2", "2.0.0", f.artifact("2.0.0", true), replace(t, `keep_old   = "hot"`, `keep_old   = "cold"`))
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, 15*time.Second)
	waitServes(t, f.traffic, "2.0.0", 5*time.Second)

	for _, bad := range []struct {
		m    *rollwavev1.CoordinatorMessage
		want string
	}{
		{rehearseOrder("", gen, 10_000), "without app"},
		{rehearseOrder("demo", 0, 10_000), "generation 0"},
		{rehearseOrder("demo", gen, 0), "max_rollback_time"},
		{rehearseOrder("demo", gen, (11 * time.Minute).Milliseconds()), "max_rollback_time"},
	} {
		if err := f.agent.Deliver(bad.m); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Deliver(%v) = %v, want an error naming %q", bad.m, err, bad.want)
		}
	}
	if st, _ := f.agent.Manager().AppState("demo"); st.Rehearsal != nil {
		t.Fatalf("a refused order rehearsed: %+v", st.Rehearsal)
	}

	if err := f.agent.Deliver(rehearseOrder("demo", gen, 20_000)); err != nil {
		t.Fatal(err)
	}
	st := agentState(t, f.agent, 40*time.Second, "rehearsal recorded", func(st slot.State) bool {
		return st.Rehearsal != nil && st.Rehearsal.Generation == gen
	})
	if r := st.Rehearsal; !r.OK || r.RollbackMS <= 0 || r.OldVersion != "1.0.0" || st.Active != slot.Green ||
		st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING {
		t.Fatalf("after the rehearsal: %+v, active %s, %s", *r, st.Active, st.Phase)
	}
	waitServes(t, f.traffic, "2.0.0", 5*time.Second)
	mfs, err := f.agent.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == "rollwave_agent_rehearsal_rollback_seconds" {
			n = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if n != 1 {
		t.Fatalf("rehearsal histogram has %d observations, want 1", n)
	}
	t.Logf("rehearsed rollback: %dms", st.Rehearsal.RollbackMS)
}
