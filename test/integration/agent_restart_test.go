//go:build e2e

package integration

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestAgentKilledBySystemd is scenario (f): SIGKILL the agent on a host
// that serves the demo app; systemd restarts it (Restart= in the packaged
// unit) and afterwards the host serves exactly the slot its state file
// names. Two releases first, so both slots hold a version and serving the
// wrong one would show.
func TestAgentKilledBySystemd(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 2)
	deployDemo(t, f, cs, hosts, "1.0.0")
	deployDemo(t, f, cs, hosts, "1.1.0")
	h := hosts[0]
	before := checkServesActiveSlot(t, h)

	props, err := h.UnitProps(fleet.AgentUnit, "MainPID", "NRestarts")
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	h.MustExec("systemctl", "kill", "-s", "KILL", fleet.AgentUnit)
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		now, err := h.UnitProps(fleet.AgentUnit, "MainPID", "NRestarts", "ActiveState", "SubState")
		if err != nil {
			return false, err.Error()
		}
		restarts, _ := strconv.Atoi(now["NRestarts"])
		was, _ := strconv.Atoi(props["NRestarts"])
		ok := now["ActiveState"] == "active" && now["SubState"] == "running" &&
			now["MainPID"] != props["MainPID"] && now["MainPID"] != "0" && restarts > was
		return ok, fmt.Sprintf("agent %v (before: %v)", now, props)
	})
	t.Logf("TIMING agent restarted by systemd after SIGKILL: %s", time.Since(killed).Round(time.Millisecond))
	waitServes(t, h, before.Slots[before.Active].Version)
	t.Logf("TIMING host serving again after SIGKILL: %s", time.Since(killed).Round(time.Millisecond))

	after := checkServesActiveSlot(t, h)
	if after.Active != before.Active || after.Generation != before.Generation {
		t.Errorf("%s: state changed across the agent's restart: active %s gen %d -> active %s gen %d",
			h.Name, before.Active, before.Generation, after.Active, after.Generation)
	}
	waitConnected(t, cs, hosts)
}
