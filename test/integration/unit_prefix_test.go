//go:build e2e

package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestSecurityUnitCommandPrefix (issue 11 item 3) on a real systemd host
// (Debian bookworm, systemd 252, agent from the .deb):
//
//   - systemd really does strip the quotes the slot renderer used to put
//     around a "+" executable: a unit written the way the old agent wrote
//     ExecStart="+/bin/sh" … with User=nobody runs as uid 0 — the escape;
//   - the units the agent renders for a normal release pass
//     `systemd-analyze verify` on that host (hardening lines included);
//   - the host's agent, configured with allow_root = false (and the new
//     limits block, which the installed agent accepts), refuses orders
//     forged past spec validation ("+", quoted "+", "!", "!!", "@", "-",
//     ":", "|", combinations, exec_start_pre, user "00"): prefixprobe runs
//     the agent's policy, built from the installed config as rollwave-agent
//     builds it, and the slot renderer against them inside the host.
func TestSecurityUnitCommandPrefix(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 1)
	h := hosts[0]

	// 1. The threat, on this systemd: quoting does not neutralise "+".
	const demoUnit = "rw-prefix-demo.service"
	unit := "[Service]\nType=oneshot\nUser=nobody\nExecStart=\"+/bin/sh\" -c \"id -u > /run/rw-prefix-uid\"\n"
	if err := h.WriteFile("/etc/systemd/system/"+demoUnit, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	h.MustExec("systemctl", "daemon-reload")
	if _, errOut, err := h.ExecTimeout(60*time.Second, "systemctl", "start", demoUnit); err != nil {
		t.Fatalf("start %s: %v: %s\n%s", demoUnit, err, errOut, h.Journal(demoUnit, 20))
	}
	uid, err := h.ReadFile("/run/rw-prefix-uid")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(uid)) != "0" {
		t.Fatalf(`ExecStart="+/bin/sh" with User=nobody ran as uid %q; this systemd does not read the prefix through quotes (the premise of the check changed)`, strings.TrimSpace(string(uid)))
	}
	t.Logf(`systemd %s: ExecStart="+/bin/sh" … with User=nobody ran as uid 0`, firstLine(h.MustExecOK("systemctl", "--version")))
	h.MustExec("rm", "-f", "/etc/systemd/system/"+demoUnit)
	h.MustExec("systemctl", "daemon-reload")

	// 2. A normal release: the units the agent rendered are valid.
	deployDemo(t, f, cs, hosts, "1.0.0")
	units := strings.Fields(h.MustExec("sh", "-c", "ls /etc/systemd/system/rollwave-"+fleet.DemoApp+"-*.service"))
	if len(units) == 0 {
		t.Fatal("no slot unit files after a successful release")
	}
	for _, u := range units {
		verify(t, h, u)
	}

	// 3. Forged orders against the host's own policy.
	cfg, err := h.ReadFile(fleet.AgentConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte("policy {\n  allow_root = false\n  unit_users = [\"nobody\", \"rwapp\"]\n}\nlimits {\n  max_artifact_unpacked = \"512MiB\"\n}\n")...)
	if err := h.WriteFile(fleet.AgentConfigPath, cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := h.Exec("systemctl", "restart", fleet.AgentUnit); err != nil {
		t.Fatalf("restart agent with the policy: %v: %s\n%s", err, errOut, h.Journal(fleet.AgentUnit, 30))
	}
	if err := h.WaitActive(fleet.AgentUnit, 60*time.Second); err != nil {
		t.Fatalf("agent with policy and limits blocks: %v\n%s", err, h.Journal(fleet.AgentUnit, 30))
	}

	h.MustExec("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "rwapp")
	probe := filepath.Join(t.TempDir(), "rw-prefixprobe")
	build := exec.Command("go", "build", "-tags", "e2e", "-o", probe, "./test/integration/prefixprobe")
	build.Dir = fleet.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build prefixprobe: %v\n%s", err, out)
	}
	if err := h.CopyIn(probe, "/usr/local/bin/rw-prefixprobe"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := h.ExecTimeout(60*time.Second, "/usr/local/bin/rw-prefixprobe", "-config", fleet.AgentConfigPath, "-out", "/run/rw-probe-control.service")
	if err != nil {
		t.Fatalf("prefixprobe: %v\n%s", err, errOut)
	}
	type result struct{ Name, Policy, Render string }
	var results []result
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("prefixprobe output %q: %v", sc.Text(), err)
		}
		results = append(results, r)
	}
	if len(results) < 10 {
		t.Fatalf("prefixprobe printed %d results:\n%s", len(results), out)
	}
	for _, r := range results {
		switch {
		case r.Name == "control":
			if r.Policy != "" || r.Render != "" {
				t.Errorf("control order refused: policy %q, render %q", r.Policy, r.Render)
			}
		case r.Name == "user 00":
			if !strings.Contains(r.Policy, "leading zeros") {
				t.Errorf("%s: policy verdict %q, want refused (leading zeros)", r.Name, r.Policy)
			}
		default:
			if !strings.Contains(r.Policy, "command prefix") {
				t.Errorf("%s: the host's policy accepted a forged prefixed command (verdict %q)", r.Name, r.Policy)
			}
			if r.Render == "" {
				t.Errorf("%s: the slot renderer wrote a unit with a prefixed executable", r.Name)
			}
		}
		t.Logf("forged order %-24s policy: %s | render: %s", r.Name, r.Policy, r.Render)
	}
	verify(t, h, "/run/rw-probe-control.service")
	if _, err := h.ReadFile("/run/rw-forged-uid"); err == nil {
		t.Error("a forged command ran")
	}
}

// verify runs `systemd-analyze verify` on a unit file inside h and fails
// on a non-zero exit or any message about that file.
func verify(t *testing.T, h *fleet.Host, path string) {
	t.Helper()
	out, errOut, err := h.ExecTimeout(60*time.Second, "systemd-analyze", "verify", path)
	base := filepath.Base(path)
	var about []string
	for _, l := range strings.Split(out+errOut, "\n") {
		if strings.Contains(l, base) {
			about = append(about, l)
		}
	}
	if err != nil || len(about) > 0 {
		body, _ := h.ReadFile(path)
		t.Errorf("systemd-analyze verify %s: %v\n%s%s\nunit:\n%s", path, err, out, errOut, body)
		return
	}
	t.Logf("systemd-analyze verify %s: ok", path)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
