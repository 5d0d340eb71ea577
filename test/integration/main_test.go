//go:build e2e

// Package integration holds rollwave's real-host scenarios: agents
// installed from the .deb on systemd-nspawn hosts, coordinators on the
// machine, links cut and healed. Run with `make e2e` (root). See package
// fleet for the harness.
package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
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

// requireEngine skips t unless the rollout orchestrator is in this tree
// (internal/deploy/rollout): without it a started release never assigns
// hosts, so scenarios that deploy the demo app cannot run. Once the
// package exists, a release that does not deploy is a failure, not a skip.
func requireEngine(t *testing.T) {
	t.Helper()
	if engineInTree() {
		return
	}
	t.Skip("e2e: skipping: the rollout engine (internal/deploy/rollout) is not in this tree yet; this scenario deploys the demo app with `rollwave release start`")
}

// bootFleet starts three coordinators and n hosts with the agent installed
// from the package, hosts alternating between cell-a and cell-b, and waits
// until the coordinators list every host as connected.
func bootFleet(t *testing.T, n int) (*fleet.Fleet, *fleet.Coordinators, []*fleet.Host) {
	t.Helper()
	f := fleet.New(t, fleet.Options{})
	requireDeb(t, f)
	cs := f.StartCoordinators(3)
	hosts := f.Boot(n)
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.InstallAgent(h, []string{"cell-a", "cell-b"}[i%2], fleet.AgentOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, cs, hosts)
	return f, cs, hosts
}

// waitConnected waits until the coordinators list each host as connected.
func waitConnected(t *testing.T, cs *fleet.Coordinators, hosts []*fleet.Host) {
	t.Helper()
	cs.WaitConnected(hosts, 60*time.Second)
}

// deployDemo publishes the demo app at version, starts a release of it,
// waits until it succeeded and every host serves version on its traffic
// port.
func deployDemo(t *testing.T, f *fleet.Fleet, cs *fleet.Coordinators, hosts []*fleet.Host, version string) {
	t.Helper()
	start := time.Now()
	art := f.PublishDemo(version, true)
	rel, err := cs.StartRelease(fleet.DemoSpec("demo-"+version, version, art, "1s"))
	if err != nil {
		t.Fatal(err)
	}
	cs.WaitRelease(rel.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, 3*time.Minute)
	for _, h := range hosts {
		waitServes(t, h, version)
	}
	t.Logf("TIMING deploy demo %s to %d hosts: %s", version, len(hosts), time.Since(start).Round(time.Millisecond))
}

// waitServes waits until h's traffic port answers with version.
func waitServes(t *testing.T, h *fleet.Host, version string) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		got, err := h.ServedVersion()
		if err != nil {
			return false, fmt.Sprintf("%s: %v", h.Name, err)
		}
		return got == version, fmt.Sprintf("%s serves %q, want %q", h.Name, got, version)
	})
}

// checkServesActiveSlot checks that h serves exactly the slot its state
// file names: the active slot's unit runs, the traffic port answers with
// that slot's version on every one of several requests, and the slot's
// own port agrees.
func checkServesActiveSlot(t *testing.T, h *fleet.Host) *slot.State {
	t.Helper()
	st, err := h.SlotState(fleet.DemoApp)
	if err != nil {
		t.Fatal(err)
	}
	active := st.Slots[st.Active]
	if !st.Active.Valid() || active == nil {
		t.Fatalf("%s: state file has no active slot: %+v", h.Name, st)
	}
	units, err := h.SlotUnits(fleet.DemoApp)
	if err != nil {
		t.Fatal(err)
	}
	if units[st.Active]["ActiveState"] != "active" {
		t.Errorf("%s: active slot %s unit is %v", h.Name, st.Active, units[st.Active])
	}
	for i := 0; i < 10; i++ {
		got, err := h.ServedVersion()
		if err != nil {
			t.Fatalf("%s: traffic port: %v", h.Name, err)
		}
		if got != active.Version {
			t.Fatalf("%s: request %d served %q; state file says %s holds %q", h.Name, i, got, st.Active, active.Version)
		}
	}
	direct, err := h.Curl(active.Port, "/")
	if err != nil || strings.TrimSpace(direct) != active.Version {
		t.Errorf("%s: slot %s port %d answers %q (%v), want %q", h.Name, st.Active, active.Port, direct, err, active.Version)
	}
	return st
}

// engineInTree reports whether internal/deploy/rollout has non-test code.
func engineInTree() bool {
	files, _ := filepath.Glob(filepath.Join(fleet.RepoRoot(), "internal", "deploy", "rollout", "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}
