//go:build e2e

package integration

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestInstallFromPackage is scenario (a): five hosts in two cells get the
// agent from the .deb; each agent runs under systemd as a Type=notify
// service that reported ready, and every host shows up in `rollwave hosts`
// with its cell.
func TestInstallFromPackage(t *testing.T) {
	timed(t)
	f := fleet.New(t, fleet.Options{})
	requireDeb(t, f)
	cs := f.StartCoordinators(3)
	hosts := f.Boot(5)

	cellOf := map[string]string{}
	for i, h := range hosts {
		cellOf[h.Name] = []string{"cell-a", "cell-b"}[i%2]
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.InstallAgent(h, cellOf[h.Name], fleet.AgentOptions{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("TIMING install (dpkg -i, config, restart, active) on %d hosts: %s", len(hosts), time.Since(start).Round(time.Millisecond))

	for _, h := range hosts {
		props, err := h.UnitProps(fleet.AgentUnit, "Type", "ActiveState", "SubState", "MainPID", "NRestarts", "FragmentPath")
		if err != nil {
			t.Fatal(err)
		}
		// Type=notify units are only active/running after READY=1.
		if props["Type"] != "notify" || props["ActiveState"] != "active" || props["SubState"] != "running" {
			t.Errorf("%s: %s: Type=%s ActiveState=%s SubState=%s; want notify active running\n%s",
				h.Name, fleet.AgentUnit, props["Type"], props["ActiveState"], props["SubState"], h.Journal(fleet.AgentUnit, 30))
		}
		if props["MainPID"] == "0" || props["MainPID"] == "" {
			t.Errorf("%s: %s has no main PID", h.Name, fleet.AgentUnit)
		}
		if enabled := strings.TrimSpace(h.MustExecOK("systemctl", "is-enabled", fleet.AgentUnit)); enabled != "enabled" {
			t.Errorf("%s: %s is %q, want enabled", h.Name, fleet.AgentUnit, enabled)
		}
		if out := h.MustExecOK("dpkg-query", "-W", "-f", "${Status}", "rollwave-agent"); out != "install ok installed" {
			t.Errorf("%s: dpkg status %q, want install ok installed", h.Name, out)
		}
		t.Logf("%s: %s Type=%s %s/%s from %s", h.Name, fleet.AgentUnit, props["Type"], props["ActiveState"], props["SubState"], props["FragmentPath"])
	}

	seen := time.Now()
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		views, err := cs.Hosts()
		if err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, v := range views {
			got[v.GetHost().GetId()] = v.GetHost().GetCell()
		}
		var missing []string
		for name, cell := range cellOf {
			if got[name] != cell {
				missing = append(missing, fmt.Sprintf("%s (want cell %s, got %q)", name, cell, got[name]))
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, fmt.Sprintf("not listed right: %v; listed: %v", missing, got)
	})
	t.Logf("TIMING all hosts listed with their cells: %s after install", time.Since(seen).Round(time.Millisecond))
	out, _, _ := cs.CLI("hosts")
	t.Logf("rollwave hosts:\n%s", out)
}
