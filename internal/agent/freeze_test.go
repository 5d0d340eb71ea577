package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 18 item 4: the leader pushes the freeze calendar to the agent,
// which keeps it on disk. An order that reaches the agent inside an
// active window covering its app and cell — here assigned straight
// through the leader, past the orchestrator's own freeze check — is
// refused: the host reports FAILED with a reason naming the window and
// keeps serving the old version. Once an admin overrides the freezes for
// a release (audited as freeze.overridden), the orchestrator starts its
// phase and the agent swaps inside the window.
func TestAgentRefusesSwapInsideCalendarFreeze(t *testing.T) {
	f := newFleet(t)
	f.v1()
	cl := f.c.Client(f.leader())
	// Every minute, for a minute, in cell a for app demo: always active.
	fr, err := cl.AddFreeze(ctx(t), &rollwavev1.AddFreezeRequest{Cron: "* * * * *", DurationMs: time.Minute.Milliseconds(),
		Timezone: "Europe/Berlin", Apps: []string{"demo"}, Cells: []string{"a"}, Reason: "calendar test", Actor: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	id := fr.GetWindow().GetId()
	stored := filepath.Join(f.agent.DataDir, "freezes.json")
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(stored)
		return strings.Contains(string(b), id), fmt.Sprintf("agent's stored calendar: %q", b)
	})

	gen := f.release("demo-2", "2.0.0", f.artifact("2.0.0", true))
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	for _, want := range []string{"freeze calendar", `freeze window "` + id + `"`, "calendar test", "override"} {
		if !strings.Contains(a.GetReason(), want) {
			t.Fatalf("refusal reason %q does not contain %q", a.GetReason(), want)
		}
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
	if st, _ := f.agent.Manager().AppState("demo"); st.Generation != 1 {
		t.Fatalf("the refused generation reached the slots: state at generation %d", st.Generation)
	}
	if _, err := cl.AbortRelease(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "demo-2", Reason: "frozen", Actor: "ops"}); err != nil {
		t.Fatal(err)
	}

	// An admin override: the orchestrator starts the phase, the order
	// carries the override, the agent swaps.
	src := demoapp.Spec("demo-3", "3.0.0", f.artifact("3.0.0", true), f.blue, f.green, port0(f.traffic), "1m")
	if _, err := cl.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "demo-3.hcl", Source: []byte(src), Start: true, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.OverrideFreeze(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "demo-3", Actor: "admin"}); err == nil {
		t.Fatal("an override without a reason was accepted")
	}
	if _, err := cl.OverrideFreeze(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "demo-3", Reason: "hotfix INC-7", Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		cur := f.leader().FSM().State().Assignment("h1", "demo")
		return cur.GetReleaseId() == "demo-3" && cur.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, fmt.Sprintf("assignment %v", cur)
	})
	waitServes(t, f.traffic, "3.0.0", 5*time.Second)
	var audited bool
	for _, e := range f.leader().FSM().State().Events("demo-3", 0, 0) {
		audited = audited || (e.GetKind() == "freeze.overridden" && e.GetActor() == "admin" && strings.Contains(e.GetMessage(), "hotfix INC-7"))
	}
	if !audited {
		t.Fatalf("no freeze.overridden event: %v", f.leader().FSM().State().Events("demo-3", 0, 0))
	}
}
