//go:build e2e

// Package integration holds rollwave's real-host scenarios: agents
// installed from the .deb on systemd-nspawn hosts, coordinators on the
// machine, links cut and healed. Run with `make e2e` (root). See package
// fleet for the harness.
package integration

import (
	"errors"
	"testing"
	"time"

	"github.com/rollwave/rollwave/test/integration/fleet"
)

// timed logs how long a scenario took, whatever its outcome.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("TIMING scenario %s: %s", t.Name(), time.Since(start).Round(time.Millisecond))
	})
}

// requireDeb skips t when no agent package exists and none can be built:
// the scenarios test the agent as users install it, never a hand copy.
func requireDeb(t *testing.T, f *fleet.Fleet) string {
	t.Helper()
	deb, err := f.AgentDeb()
	if errors.Is(err, fleet.ErrNoPackage) {
		t.Skipf("e2e: skipping: %v\n(the scenarios install the agent with dpkg -i of the real package; set ROLLWAVE_AGENT_DEB or land packaging/ so `make packages` builds dist/rollwave-agent_<version>_amd64.deb)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent package: %s", deb)
	return deb
}
