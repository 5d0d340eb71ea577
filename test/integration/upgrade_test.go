//go:build e2e

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestUpgradeInPlace is scenario (g): dpkg -i of the package over an
// installed agent keeps the host's config, agent state and serving slot
// (the agent comes back active and connected); dpkg --purge then removes
// every file the package installed and stops the agent. The serving-slot
// part needs the rollout engine and is skipped without it; the package
// part always runs.
func TestUpgradeInPlace(t *testing.T) {
	timed(t)
	f, cs, hosts := bootFleet(t, 2)
	h := hosts[0]
	deb, err := f.AgentDeb()
	if err != nil {
		t.Fatal(err)
	}

	engine := engineInTree()
	if engine {
		deployDemo(t, f, cs, hosts, "2.0.0")
	} else {
		t.Log("rollout engine not in this tree: checking config and agent survival only, not the serving slot")
	}
	var before *slotSnapshot
	if engine {
		before = snapshot(t, h)
	}
	config, err := h.ReadFile(fleet.AgentConfigPath)
	if err != nil {
		t.Fatal(err)
	}

	props, err := h.UnitProps(fleet.AgentUnit, "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.InstallDeb(deb); err != nil {
		t.Fatal(err)
	}
	// The upgrade's postinst try-restarts a running agent; it must come
	// back ready (Type=notify: active/running only after READY=1).
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		now, err := h.UnitProps(fleet.AgentUnit, "MainPID", "ActiveState", "SubState")
		if err != nil {
			return false, err.Error()
		}
		ok := now["ActiveState"] == "active" && now["SubState"] == "running" && now["MainPID"] != props["MainPID"] && now["MainPID"] != "0"
		return ok, fmt.Sprintf("agent %v, before the upgrade MainPID=%s", now, props["MainPID"])
	})
	t.Logf("TIMING dpkg -i over an installed agent until active: %s", time.Since(start).Round(time.Millisecond))
	if got, err := h.ReadFile(fleet.AgentConfigPath); err != nil || string(got) != string(config) {
		t.Errorf("%s changed by the upgrade (err %v):\n%s\nwant:\n%s", fleet.AgentConfigPath, err, got, config)
	}
	if out := h.MustExecOK("dpkg-query", "-W", "-f", "${Status}", "rollwave-agent"); out != "install ok installed" {
		t.Errorf("dpkg status after upgrade %q, want install ok installed", out)
	}
	waitConnected(t, cs, hosts)
	if engine {
		after := snapshot(t, h)
		if after.active != before.active || after.generation != before.generation || after.version != before.version {
			t.Errorf("upgrade changed the slot state: %+v -> %+v", before, after)
		}
	}

	// Purge: every file the package owns goes, and the agent stops.
	var owned []string
	for _, p := range strings.Split(h.MustExec("dpkg-query", "-L", "rollwave-agent"), "\n") {
		p = strings.TrimSpace(p)
		if !strings.HasPrefix(p, "/") || p == "/." {
			continue
		}
		// Regular files only: directories may be shared (and /lib is a
		// symlink on merged-/usr systems).
		if fi, err := os.Lstat(filepath.Join(h.Root(), p)); err == nil && fi.Mode().IsRegular() {
			owned = append(owned, p)
		}
	}
	if len(owned) == 0 {
		t.Fatal("dpkg -L rollwave-agent lists no files")
	}
	if out, errOut, err := h.ExecTimeout(5*time.Minute, "env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--purge", "rollwave-agent"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s%s", err, out, errOut)
	}
	for _, p := range owned {
		if _, err := os.Lstat(filepath.Join(h.Root(), p)); err == nil {
			t.Errorf("%s still present after dpkg --purge", p)
		}
	}
	if state := h.IsActive(fleet.AgentUnit); state == "active" || state == "activating" {
		t.Errorf("%s is %s after dpkg --purge", fleet.AgentUnit, state)
	}
	if out := h.MustExecOK("dpkg-query", "-W", "-f", "${Status}", "rollwave-agent"); strings.Contains(out, "installed") && !strings.Contains(out, "not-installed") {
		t.Errorf("dpkg status after purge %q", out)
	}
	// Purge also deletes the agent's config and its data dir (slot state).
	for _, p := range []string{fleet.AgentConfigPath, fleet.AgentDataDir} {
		if _, err := os.Lstat(filepath.Join(h.Root(), p)); err == nil {
			t.Errorf("%s still present after dpkg --purge", p)
		}
	}
	// The slots' units are the operator's to remove (packaging/README.md).
	left := h.MustExecOK("sh", "-c", "ls -d /etc/rollwave /etc/systemd/system/rollwave-* 2>/dev/null")
	t.Logf("left after purge: %q", strings.TrimSpace(left))
}

type slotSnapshot struct {
	active     string
	generation uint64
	version    string
}

// snapshot checks h serves its active slot and returns the state file's
// view of it.
func snapshot(t *testing.T, h *fleet.Host) *slotSnapshot {
	t.Helper()
	st := checkServesActiveSlot(t, h)
	return &slotSnapshot{active: string(st.Active), generation: st.Generation, version: st.Slots[st.Active].Version}
}
