package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// A release whose post_switch smoke test fails: the agent switches,
// runs the hook, reverts at once and reports REVERTED with the hook's
// output; the old version serves again and raft holds the reason.
func TestPostSwitchHookFailureRevertsTheHost(t *testing.T) {
	f := newFleet(t)
	f.v1()
	smoke := filepath.Join(f.dir, "smoke.sh")
	if err := os.WriteFile(smoke, []byte("#!/bin/sh\necho \"smoke: $ROLLWAVE_APP $ROLLWAVE_VERSION on $ROLLWAVE_HOST answered 503\"\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	gen := f.releaseWith("demo-2", "2.0.0", f.artifact("2.0.0", true), replace(t,
		"  bake {", "  hook \"post_switch\" {\n    exec    = [\""+smoke+"\", \"{{port}}\"]\n    timeout = \"20s\"\n  }\n\n  bake {"))
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED, 30*time.Second)
	for _, want := range []string{"post_switch hook failed: exit status 4", "smoke: demo 2.0.0 on h1 answered 503"} {
		if !strings.Contains(a.GetReason(), want) {
			t.Fatalf("reason %q does not contain %q", a.GetReason(), want)
		}
	}
	waitServes(t, f.traffic, "1.0.0", 5*time.Second)
}

// A hook the host's policy refuses (here, exec_start's forbidden "+"
// prefix, in an order written straight into the raft log past spec
// validation) fails the order before anything on the host changes: the
// hook never runs and the slots stay at the old generation.
func TestSecurityForgedHookOrderRefused(t *testing.T) {
	f := newFleet(t)
	f.v1()
	ran := filepath.Join(f.dir, "hook-ran")
	gen := f.forgeOrder(func(sp *rollwavev1.ReleaseSpec) {
		sp.Hooks = []*rollwavev1.HookSpec{{Name: "pre_switch", Exec: []string{"+/bin/sh", "-c", "touch " + ran}, TimeoutMs: 5000}}
	})
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	if !strings.Contains(a.GetReason(), "local policy") || !strings.Contains(a.GetReason(), `hook "pre_switch"`) || !strings.Contains(a.GetReason(), "command prefix") {
		t.Fatalf("reason should name the policy, the hook and the command prefix: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
	if st, _ := f.agent.Manager().AppState("demo"); st.Generation != 1 {
		t.Fatalf("the forged generation reached the slots: state at generation %d", st.Generation)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the refused hook ran")
	}
}
