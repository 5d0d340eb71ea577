//go:build e2e

package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestHostReboot: a host halted in order and booted again keeps its
// installed agent and config, systemd starts the agent at boot (the
// package enabled it) and the host reconnects to the coordinators.
func TestHostReboot(t *testing.T) {
	timed(t)
	_, cs, hosts := bootFleet(t, 2)
	h := hosts[0]
	start := time.Now()
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	// The coordinators notice the session is gone before it comes back.
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		views, err := cs.Hosts()
		if err != nil {
			return false, err.Error()
		}
		for _, v := range views {
			if v.GetHost().GetId() == h.Name {
				return !v.GetConnected(), fmt.Sprintf("%s: connected=%v liveness=%s", h.Name, v.GetConnected(), v.GetLiveness())
			}
		}
		return false, h.Name + " not listed"
	})
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitActive(fleet.AgentUnit, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, cs, hosts)
	t.Logf("TIMING host halt, boot, agent active and reconnected: %s", time.Since(start).Round(time.Millisecond))
}
