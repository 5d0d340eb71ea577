package rollout_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestE2EPostSwitchHookFailureRollsBack (issue 17 item 4): a release
// whose post_switch smoke test fails on the canary. The canary switches,
// runs the hook, reverts on its own with the hook's output as the reason;
// the leader counts it as a failed host and rolls the release back; no
// other host is touched, and the audit log holds the output.
func TestE2EPostSwitchHookFailureRollsBack(t *testing.T) {
	f := newFleetOf(t, 1, 1)
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	f.waitServing(f.hosts, "1.0.0", 5*time.Second)

	smoke := filepath.Join(f.dir, "smoke.sh")
	// Passes on the old version (the hook is only in demo-2), fails on the
	// new one with an explanation on stdout and stderr.
	if err := os.WriteFile(smoke, []byte(`#!/bin/sh
echo "smoke test of $ROLLWAVE_APP $ROLLWAVE_VERSION (was $ROLLWAVE_PREVIOUS_VERSION) on $ROLLWAVE_HOST slot $ROLLWAVE_SLOT"
echo "GET /checkout answered 500" >&2
exit 1
`), 0o755); err != nil {
		t.Fatal(err)
	}
	f.start("demo-2", "2.0.0", specOpts{top: `  hook "post_switch" {
    exec    = ["` + smoke + `"]
    timeout = "20s"
  }
`})
	r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
	f.waitServing(f.hosts, "1.0.0", 10*time.Second)

	as := f.leader().FSM().State().ReleaseAssignments("demo-2")
	if len(as) != 1 {
		t.Fatalf("%d hosts assigned, want only the canary:\n%s", len(as), f.dump("demo-2"))
	}
	canary := as[0].GetHost()
	if as[0].GetState() != v1.AssignmentState_ASSIGNMENT_STATE_REVERTED {
		t.Fatalf("canary %s is %s (%s), want reverted", canary, as[0].GetState(), as[0].GetReason())
	}
	output := []string{"post_switch hook failed: exit status 1", "smoke test of demo 2.0.0 (was 1.0.0) on " + canary, "GET /checkout answered 500"}
	for _, want := range output {
		if !strings.Contains(as[0].GetReason(), want) {
			t.Errorf("canary reason %q does not contain %q", as[0].GetReason(), want)
		}
	}
	// The audit log alone tells the story: the canary switched once and
	// reverted once, with the hook's output as the revert's reason.
	moved, reverted := f.movesFromEvents("demo-2")
	if len(moved[canary]) != 1 || len(reverted[canary]) != 1 || len(moved) != 1 {
		t.Fatalf("switched %v, reverted %v: want the canary once each\n%s", moved, reverted, f.dump("demo-2"))
	}
	if rv := reverted[canary][0]; rv["from_version"] != "2.0.0" || rv["to_version"] != "1.0.0" || !strings.Contains(rv["reason"], "GET /checkout answered 500") {
		t.Errorf("host.reverted evidence %v", rv)
	}
	// The gate that failed the phase names the host and carries the output.
	gate := slices.IndexFunc(f.eventsOf("demo-2"), func(e *v1.Event) bool { return e.GetKind() == "gate.failed" })
	if gate < 0 {
		t.Fatalf("no gate.failed event:\n%s", f.dump("demo-2"))
	}
	if ev := f.eventsOf("demo-2")[gate].GetEvidence(); ev["gate"] != "max_failed_hosts" || !strings.Contains(ev["host."+canary], "post_switch hook failed") ||
		!strings.Contains(ev["host."+canary], "GET /checkout answered 500") {
		t.Errorf("gate.failed evidence %v, want max_failed_hosts with the canary's hook output", ev)
	}
	for _, kind := range []string{"phase.failed", "release.rolling_back", "release.rolled_back"} {
		if !slices.ContainsFunc(f.eventsOf("demo-2"), func(e *v1.Event) bool { return e.GetKind() == kind }) {
			t.Errorf("no %s event:\n%s", kind, f.dump("demo-2"))
		}
	}
	t.Logf("demo-2: %s; canary %s: %s", r.GetReason(), canary, as[0].GetReason())
}
