//go:build e2e

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// newerAgentDeb builds the agent package from the same binaries (bin/,
// `make build`) with another package version, into a temporary directory
// (not dist/: AgentDeb picks the newest package there).
func newerAgentDeb(t *testing.T, version string) string {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./packaging/cmd/mkpkg", "-version", version, "-bin", "bin", "-out", out)
	cmd.Dir = fleet.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkpkg -version %s: %v\n%s", version, err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "rollwave-agent_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("mkpkg -version %s built %v, want one agent .deb", version, debs)
	}
	return debs[0]
}

// upgradeAgent installs deb on h with dpkg -i (the postinst try-restarts
// the running agent) and waits until the agent runs again under a new PID
// with the package's version installed.
func upgradeAgent(t *testing.T, h *fleet.Host, deb, pkgVersion string) {
	t.Helper()
	props, err := h.UnitProps(fleet.AgentUnit, "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.InstallDeb(deb); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		now, err := h.UnitProps(fleet.AgentUnit, "MainPID", "ActiveState", "SubState")
		if err != nil {
			return false, err.Error()
		}
		ok := now["ActiveState"] == "active" && now["SubState"] == "running" && now["MainPID"] != props["MainPID"] && now["MainPID"] != "0"
		return ok, fmt.Sprintf("%s: agent %v, before dpkg -i MainPID=%s", h.Name, now, props["MainPID"])
	})
	if got := h.MustExecOK("dpkg-query", "-W", "-f", "${Version}", "rollwave-agent"); got != pkgVersion {
		t.Errorf("%s: rollwave-agent %s installed, want %s", h.Name, got, pkgVersion)
	}
	t.Logf("TIMING %s: dpkg -i %s until the agent runs again: %s", h.Name, filepath.Base(deb), time.Since(start).Round(time.Millisecond))
}

// TestAgentPackageUpgradeDuringRollout: `dpkg -i` of a newer agent
// package (whose postinst restarts the agent) during a rollout does not
// fail it. First mid-swap: a host's new slot is in its ready step, traffic
// still on the old slot, when its agent package is upgraded; the swap
// completes after the restart and the release succeeds. Then mid-bake:
// every host's agent package is upgraded while the canary bakes; the
// release succeeds with every host finalized. No event says a host
// failed.
func TestAgentPackageUpgradeDuringRollout(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 2)
	deployDemo(t, f, cs, hosts, "1.0.0")
	debSwap, debBake := newerAgentDeb(t, "v99.0.1"), newerAgentDeb(t, "v99.0.2")

	noFailure := func(id, when string) {
		t.Helper()
		evs, err := cs.Events(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.GetKind() == "host.failed" || strings.Contains(e.GetMessage(), "context canceled") {
				t.Errorf("dpkg -i %s: event %s %q: an upgrade is not a failure", when, e.GetKind(), e.GetMessage())
			}
		}
	}

	// Mid-swap: an extra check passes only once the test creates the flag,
	// so the swap waits in its ready step until after the upgrade.
	const v2 = "2.0.0"
	flag := "/run/rollwave-e2e-ready-" + v2
	check := fmt.Sprintf(`check "exec" {
      command  = ["test", "-e", %q]
      interval = "500ms"
      timeout  = "400ms"
    }
    min_healthy_time`, flag)
	spec := fleet.DemoSpecWith("demo-"+v2, v2, f.PublishDemo(v2, true), fleet.DemoSpecOptions{Bake: "1s", IsolationTimeout: "10s"})
	spec = strings.Replace(spec, "min_healthy_time", check, 1)
	spec = strings.Replace(spec, `healthy_deadline = "10s"`, `healthy_deadline = "2m"`, 1)
	id := startRelease(t, cs, spec)
	var h *fleet.Host
	testutil.WaitFor(t, 2*time.Minute, func() (bool, string) {
		for _, c := range hosts {
			st, err := c.SlotState(fleet.DemoApp)
			if err == nil && st.Op != nil && st.Op.Step == slot.StepReady && st.Slots[st.To] != nil && st.Slots[st.To].Version == v2 {
				h = c
				return true, ""
			}
		}
		return false, "waiting for a host's swap to " + v2 + " to be in its ready step"
	})
	waitServes(t, h, "1.0.0") // traffic still on the old slot
	start := time.Now()
	upgradeAgent(t, h, debSwap, "99.0.1")
	for _, c := range hosts {
		c.MustExec("touch", flag)
	}
	cs.WaitRelease(id, relSucceeded, 3*time.Minute)
	t.Logf("TIMING dpkg -i mid-swap on %s until release %s succeeded: %s", h.Name, v2, time.Since(start).Round(time.Millisecond))
	noFailure(id, "mid-swap")
	for _, c := range hosts {
		waitServes(t, c, v2)
	}

	// Mid-bake: every host's agent upgraded while the canary bakes.
	const v3 = "3.0.0"
	id = startRelease(t, cs, fleet.DemoSpecWith("demo-"+v3, v3, f.PublishDemo(v3, true), fleet.DemoSpecOptions{Bake: "25s", IsolationTimeout: "10s"}))
	resp := waitPhase(t, cs, id, 0, phBaking, 2*time.Minute)
	p0 := resp.GetRelease().GetPhases()[0]
	for _, name := range p0.GetHosts() {
		waitServes(t, f.Host(name), v3)
	}
	deadline := time.Unix(0, p0.GetBakeDeadlineUnixNano())
	start = time.Now()
	for _, c := range hosts {
		upgradeAgent(t, c, debBake, "99.0.2")
	}
	if time.Now().After(deadline) {
		t.Errorf("the upgrades outlasted the canary's bake (deadline %s); lengthen it", deadline.Format(time.RFC3339))
	}
	for _, name := range p0.GetHosts() {
		if got, err := f.Host(name).ServedVersion(); err != nil || got != v3 {
			t.Errorf("%s (baking) answers %q (%v) after the agent upgrade, want %s", name, got, err, v3)
		}
	}
	cs.WaitRelease(id, relSucceeded, 3*time.Minute)
	t.Logf("TIMING dpkg -i mid-bake on every host until release %s succeeded: %s", v3, time.Since(start).Round(time.Millisecond))
	noFailure(id, "mid-bake")
	resp, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hosts {
		as := assignmentsOf(resp, c.Name)
		if len(as) != 1 || as[0].GetState() != asFinalized {
			t.Errorf("%s: assignments of %s: %v, want one finalized", c.Name, id, as)
		}
		waitServes(t, c, v3)
	}
}
