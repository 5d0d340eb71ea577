//go:build e2e

package integration

import (
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestPostSwitchHookFailureReverts (issue 17 item 4): a release whose
// post_switch smoke test fails on a real host (systemd driver, the agent
// from its .deb). The host switches, runs the hook with the release
// context, reverts at once and serves the old version again; the release
// rolls back, and the host's reason and the host.reverted event carry the
// hook's output.
func TestPostSwitchHookFailureReverts(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 1)
	h := hosts[0]
	deployDemo(t, f, cs, hosts, "1.0.0")

	const smoke = "/usr/local/bin/rollwave-e2e-smoke"
	if err := h.WriteFile(smoke, []byte(`#!/bin/sh
env | grep '^ROLLWAVE_' | sort > /run/rollwave-e2e-hook-env
id -u >> /run/rollwave-e2e-hook-env
echo "smoke: $ROLLWAVE_APP $ROLLWAVE_VERSION on $ROLLWAVE_HOST slot $ROLLWAVE_SLOT: GET /checkout answered 500"
exit 1
`), 0o755); err != nil {
		t.Fatal(err)
	}
	const v2 = "2.0.0"
	art := f.PublishDemo(v2, true)
	spec := fleet.DemoSpec("demo-"+v2, v2, art, "1s")
	if !strings.Contains(spec, "  rollback {") {
		t.Fatal("demo spec has no rollback block to put the hook before")
	}
	spec = strings.Replace(spec, "  rollback {", "  hook \"post_switch\" {\n    exec    = [\""+smoke+"\", \"{{port}}\"]\n    timeout = \"20s\"\n  }\n\n  rollback {", 1)
	start := time.Now()
	rel, err := cs.StartRelease(spec)
	if err != nil {
		t.Fatal(err)
	}
	cs.WaitRelease(rel.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 3*time.Minute)
	waitServes(t, h, "1.0.0")
	t.Logf("TIMING release with a failing post_switch hook until rolled back and serving 1.0.0: %s", time.Since(start).Round(time.Millisecond))
	st := checkServesActiveSlot(t, h)
	if st.Slots[st.Active].Version != "1.0.0" {
		t.Fatalf("active slot %s runs %s, want 1.0.0", st.Active, st.Slots[st.Active].Version)
	}

	want := "smoke: demo 2.0.0 on " + h.Name
	resp, err := cs.Release(rel.GetId())
	if err != nil {
		t.Fatal(err)
	}
	as := assignmentsOf(resp, h.Name)
	if len(as) != 1 || as[0].GetState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED ||
		!strings.Contains(as[0].GetReason(), "post_switch hook failed: exit status 1") || !strings.Contains(as[0].GetReason(), want) {
		t.Fatalf("%s assignments %v: want one reverted with the hook's output", h.Name, as)
	}
	evs, err := cs.Events(rel.GetId())
	if err != nil {
		t.Fatal(err)
	}
	var switched, reverted int
	for _, e := range evs {
		switch e.GetKind() {
		case "host.switched":
			switched++
		case "host.reverted":
			reverted++
			if !strings.Contains(e.GetEvidence()["reason"], want) || e.GetEvidence()["to_version"] != "1.0.0" {
				t.Errorf("host.reverted evidence %v", e.GetEvidence())
			}
		}
	}
	if switched != 1 || reverted != 1 {
		t.Errorf("%d host.switched and %d host.reverted events, want one each", switched, reverted)
	}
	env, err := h.ReadFile("/run/rollwave-e2e-hook-env")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"ROLLWAVE_HOOK=post_switch", "ROLLWAVE_HOST=" + h.Name, "ROLLWAVE_PREVIOUS_VERSION=1.0.0",
		"ROLLWAVE_RELEASE=demo-2.0.0", "ROLLWAVE_VERSION=2.0.0"} {
		if !strings.Contains(string(env), line+"\n") {
			t.Errorf("hook environment lacks %s:\n%s", line, env)
		}
	}
	t.Logf("%s: %s", h.Name, as[0].GetReason())
}
