package agent_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSecurityForgedPrefixOrderRefused (issue 11 item 3): a release
// written straight into the raft log — past the operator API's spec
// validation, as a forged or old coordinator could — whose exec_start
// starts with systemd's "+" prefix reaches the agent over its real
// session; the agent refuses it by its local policy (even the permissive
// default one) and reports FAILED with the reason, and the serving slot
// keeps serving the old version.
func TestSecurityForgedPrefixOrderRefused(t *testing.T) {
	f := newFleet(t)
	f.v1()
	gen := f.forgeOrder(func(sp *rollwavev1.ReleaseSpec) {
		sp.Unit.ExecStart = `"+/bin/sh" -c 'id -u > ` + f.dir + `/forged-ran'`
	})
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	if !strings.Contains(a.GetReason(), "local policy") || !strings.Contains(a.GetReason(), "command prefix") {
		t.Fatalf("reason should name the policy and the command prefix: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
	if st, _ := f.agent.Manager().AppState("demo"); st.Generation != 1 {
		t.Fatalf("the forged generation reached the slots: state at generation %d", st.Generation)
	}
}

// forgeOrder writes release demo-forged (6.6.6), a copy of demo-1 with
// its spec changed by edit, straight into the raft log, past the operator
// API's spec validation, starts it and assigns h1; it returns h1's
// generation.
func (f *fleet) forgeOrder(edit func(*rollwavev1.ReleaseSpec)) uint64 {
	t := f.t
	t.Helper()
	l := f.leader()
	old := l.FSM().State().Release("demo-1")
	if old == nil {
		t.Fatal("release demo-1 not in the state")
	}
	forged := proto.Clone(old).(*rollwavev1.Release)
	forged.Id = "demo-forged"
	forged.State = rollwavev1.ReleaseState_RELEASE_STATE_PENDING
	forged.CurrentPhase = 0
	for i, ph := range forged.GetPhases() {
		forged.Phases[i] = &rollwavev1.Phase{Index: ph.GetIndex(), Hosts: ph.GetHosts(), Cells: ph.GetCells(), BakeMs: ph.GetBakeMs()}
	}
	sp := forged.GetSpec()
	sp.Name, sp.Version = "demo-forged", "6.6.6"
	edit(sp)
	now := time.Now().UnixNano()
	if _, err := l.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Release: forged, Actor: "forger"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Apply(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: now, ReleaseId: "demo-forged", State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, CurrentPhase: -1,
	}); err != nil {
		t.Fatal(err)
	}
	as, err := l.AssignHosts("demo-forged", 0, []string{"h1"})
	if err != nil {
		t.Fatal(err)
	}
	return as[0].GetGeneration()
}
