//go:build e2e

package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestFirstDeployFailingBake: the app's first release on the fleet turns
// unhealthy during the canary's bake (after readiness and the switch).
// There is no old slot to go back to, but the failure must still stop the
// rollout: the canary's bake monitor sees the checks failing, so the
// phase must fail and no host outside the canary may get the version
// (docs/design.md: the bake monitor reverts at once when checks keep
// failing; a failed host fails the phase under max_failed_hosts = 0).
// The release must end promptly (rolled_back or failed), not wait out
// the orchestrator's 2-minute revert timeout.
func TestFirstDeployFailingBake(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 3)
	const v1 = "1.0.0"
	start := time.Now()
	art := f.PublishDemoWith(v1, "4s")
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v1, v1, art, fleet.DemoSpecOptions{Bake: "12s"}))
	final := map[string]bool{"RELEASE_STATE_SUCCEEDED": true, "RELEASE_STATE_ROLLED_BACK": true,
		"RELEASE_STATE_FAILED": true, "RELEASE_STATE_ABORTED": true}
	var state string
	testutil.WaitFor(t, 3*time.Minute, func() (bool, string) {
		resp, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		state = resp.GetRelease().GetState().String()
		return final[state], "release " + id + " is " + state
	})
	took := time.Since(start)
	t.Logf("TIMING first deploy (unhealthy after 4s) until %s: %s", state, took.Round(time.Millisecond))
	resp, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetRelease()
	t.Logf("release %s: %s (%s)", id, r.GetState(), r.GetReason())
	for _, a := range resp.GetAssignments() {
		t.Logf("%s generation %d phase %d: %s (%s)", a.GetHost(), a.GetGeneration(), a.GetPhase(), a.GetState(), a.GetReason())
	}
	if out, _, err := cs.CLI("release", "events", id); err == nil {
		t.Logf("events:\n%s", out)
	}
	if r.GetState() == relSucceeded {
		t.Errorf("release %s succeeded although its version turned unhealthy during the canary's bake", id)
	}
	canary := r.GetPhases()[0].GetHosts()
	for _, a := range resp.GetAssignments() {
		if !slices.Contains(canary, a.GetHost()) {
			t.Errorf("%s outside the canary %v got the failing version (phase %d, %s)", a.GetHost(), canary, a.GetPhase(), a.GetState())
		}
	}
	if took > 60*time.Second {
		t.Errorf("release took %s to end; a first deploy has nothing to revert and should end promptly", took.Round(time.Second))
	}
	for _, h := range hosts {
		if !slices.Contains(canary, h.Name) {
			continue
		}
		t.Log(h.Journal(fleet.AgentUnit, 15))
	}
}
