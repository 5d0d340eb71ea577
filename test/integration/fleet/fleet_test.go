//go:build e2e

package fleet

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// TestFleet checks the harness itself: boot, exec, copy-in, cut/heal, and
// that a stopped host boots again with its files.
func TestFleet(t *testing.T) {
	f := New(t, Options{})
	hosts := f.Boot(2)
	h1, h2 := hosts[0], hosts[1]

	if got := strings.TrimSpace(h1.MustExec("hostname")); got != "h1" {
		t.Errorf("hostname = %q, want h1", got)
	}
	if _, _, err := h1.Exec("ping", "-c1", "-W2", h2.IP); err != nil {
		t.Errorf("h1 cannot ping h2: %v", err)
	}
	if err := h1.WriteFile("/etc/rollwave/marker", []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cut := time.Now()
	if err := h2.Cut(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h1.ExecTimeout(10*time.Second, "ping", "-c1", "-W1", h2.IP); err == nil {
		t.Errorf("h1 reached h2 across a cut link")
	}
	if err := h2.Heal(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, _, err := h1.ExecTimeout(5*time.Second, "ping", "-c1", "-W1", h2.IP)
		return err == nil, "h1 cannot ping h2 after heal"
	})
	t.Logf("TIMING cut+heal round trip: %s", time.Since(cut).Round(time.Millisecond))

	stop := time.Now()
	if err := h1.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING orderly halt: %s", time.Since(stop).Round(time.Millisecond))
	if err := h1.Start(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(h1.MustExec("cat", "/etc/rollwave/marker")); got != "kept" {
		t.Errorf("after restart marker = %q, want kept", got)
	}
	t.Logf("TIMING stop+start: %s", time.Since(stop).Round(time.Millisecond))

	// SSH from the machine with the fleet's key, as Ansible logs in; a
	// host without the key in authorized_keys refuses it.
	if err := f.EnableSSH(h2); err != nil {
		t.Fatal(err)
	}
	if out, err := f.SSH(h2, "hostname"); err != nil || strings.TrimSpace(out) != "h2" {
		t.Errorf("ssh h2 hostname = %q, %v; want h2", out, err)
	}
	if _, _, err := h1.Exec("systemctl", "start", SSHUnit); err != nil {
		t.Fatal(err)
	}
	if out, err := f.SSH(h1, "true"); err == nil {
		t.Errorf("ssh into h1 without its authorized_keys succeeded: %q", out)
	}
}

// TestDemoHelpers checks the demo helpers without the rollout engine: an
// artifact published to the share is readable in a host at its file://
// URL, the packaged app runs there as a slot-named systemd unit, and
// Curl/SlotUnits see it.
func TestDemoHelpers(t *testing.T) {
	f := New(t, Options{})
	h := f.Boot(1)[0]
	art := f.PublishDemo("9.9.9", true)
	sum := h.MustExec("sh", "-c", "curl -sf "+art.URL+" | sha256sum")
	if !strings.HasPrefix(sum, art.SHA256) {
		t.Fatalf("artifact at %s inside the host has sha256 %q, want %s", art.URL, sum, art.SHA256)
	}
	dir := "/var/lib/demo-check"
	h.MustExec("mkdir", "-p", dir)
	h.MustExec("tar", "-xzf", strings.TrimPrefix(art.URL, "file://"), "-C", dir)
	h.MustExec("systemd-run", "--unit="+SlotUnit(DemoApp, "blue"), dir+"/bin/demo-app", "-dir", dir, "-listen", "127.0.0.1:18081")
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		out, err := h.Curl(DemoBluePort, "/")
		return err == nil && strings.TrimSpace(out) == "9.9.9", fmt.Sprintf("curl: %q %v", out, err)
	})
	active, err := h.ActiveSlotUnits(DemoApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0] != "blue" {
		t.Errorf("active slot units %v, want [blue]", active)
	}
	if _, err := h.Curl(DemoTrafficPort, "/"); err == nil {
		t.Errorf("traffic port answers with no agent running")
	}
}
