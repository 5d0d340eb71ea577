//go:build e2e

package integration

import (
	"testing"
	"time"

	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestControlPlaneRestartAgentsReconnect: every coordinator stopped
// (SIGTERM, as `systemctl stop` does; then, separately, SIGKILL) and
// started again 30 s later on the same addresses and data dirs: a leader is
// elected and every agent has a session with it within 10 s. Before, the
// agents found no live coordinator in gossip, never tried their join
// addresses again, and none came back.
func TestControlPlaneRestartAgentsReconnect(t *testing.T) {
	timed(t)
	_, cs, hosts := bootFleet(t, 3)
	for _, mode := range []string{"stop", "kill"} {
		for _, c := range cs.Nodes() {
			if mode == "stop" {
				c.Stop()
			} else {
				c.Kill()
			}
		}
		// The outage itself (the scenario's 30 s), not a synchronisation:
		// the agents' gossip declares every coordinator gone meanwhile.
		time.Sleep(30 * time.Second)
		for _, c := range cs.Nodes() {
			c.Restart()
		}
		leader := cs.WaitLeader(60 * time.Second)
		elected := time.Now()
		t.Cleanup(func() {
			if t.Failed() {
				for _, h := range hosts {
					t.Logf("--- %s agent journal:\n%s", h.Name, h.Journal(fleet.AgentUnit, 60))
				}
			}
		})
		cs.WaitConnected(hosts, 10*time.Second)
		t.Logf("TIMING %s: every agent connected %s after the new leader %s was seen", mode, time.Since(elected).Round(time.Millisecond), leader.Name)
	}
}
