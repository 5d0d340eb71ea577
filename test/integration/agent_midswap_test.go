//go:build e2e

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestAgentRestartMidSwap: the agent is restarted (`systemctl restart`,
// then separately SIGKILL) while a host's new slot is being checked and
// traffic is still on the old slot. A restart is not a failure: the swap
// of that generation is done again after the restart, the release
// succeeds, and no event says the host failed.
func TestAgentRestartMidSwap(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 1)
	h := hosts[0]
	deployDemo(t, f, cs, hosts, "1.0.0")

	for _, c := range []struct{ how, version string }{{"restart", "2.0.0"}, {"kill", "3.0.0"}} {
		flag := "/run/rollwave-e2e-ready-" + c.version
		art := f.PublishDemo(c.version, true)
		// An extra check that passes only once the test creates the flag:
		// the swap waits in its ready step until then.
		check := fmt.Sprintf(`check "exec" {
      command  = ["test", "-e", %q]
      interval = "500ms"
      timeout  = "400ms"
    }
    min_healthy_time`, flag)
		spec := fleet.DemoSpec("demo-"+c.version, c.version, art, "1s")
		spec = strings.Replace(spec, "min_healthy_time", check, 1)
		spec = strings.Replace(spec, `healthy_deadline = "10s"`, `healthy_deadline = "2m"`, 1)
		rel, err := cs.StartRelease(spec)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 2*time.Minute, func() (bool, string) {
			st, err := h.SlotState(fleet.DemoApp)
			if err != nil {
				return false, err.Error()
			}
			return st.Op != nil && st.Op.Step == slot.StepReady && st.Slots[st.To] != nil && st.Slots[st.To].Version == c.version,
				fmt.Sprintf("%s: waiting for the swap to %s to be in its ready step: %+v", h.Name, c.version, st.Op)
		})
		waitServes(t, h, map[string]string{"2.0.0": "1.0.0", "3.0.0": "2.0.0"}[c.version]) // traffic still on the old slot
		start := time.Now()
		if c.how == "restart" {
			h.MustExec("systemctl", "restart", fleet.AgentUnit)
		} else {
			h.MustExec("systemctl", "kill", "-s", "KILL", fleet.AgentUnit) // systemd restarts it (Restart=)
		}
		h.MustExec("touch", flag)
		cs.WaitRelease(rel.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, 3*time.Minute)
		waitServes(t, h, c.version)
		t.Logf("TIMING %s of the agent mid-swap to release %s succeeded: %s", c.how, c.version, time.Since(start).Round(time.Millisecond))
		evs, err := cs.Events(rel.GetId())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.GetKind() == "host.failed" || strings.Contains(e.GetMessage(), "context canceled") {
				t.Errorf("%s mid-swap: event %s %q: a restart is not a failure", c.how, e.GetKind(), e.GetMessage())
			}
		}
	}
}
