//go:build e2e

package realhost

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// ansible runs the playbooks in test/bench/ansible against the fleet.
type ansible struct {
	f        *fleet.Fleet
	playbook string
	dir      string // the playbooks
	work     string // inventory, SSH control sockets
	logs     string // playbook output: next to $BENCH_REALHOST_OUT, else work
	inv      string
	key      string // the SSH identity
	version  string
}

func newAnsible(t *testing.T, f *fleet.Fleet, playbook string, hosts []*fleet.Host) *ansible {
	key, _, err := f.SSHKey()
	if err != nil {
		t.Fatal(err)
	}
	// Short: ssh control socket paths must fit in a sun_path.
	work, err := os.MkdirTemp("", "rw-ans-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close the persistent SSH connections, then remove the files.
		if socks, _ := filepath.Glob(filepath.Join(work, "cp", "*")); len(socks) > 0 {
			for _, s := range socks {
				exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "x").Run()
			}
		}
		os.RemoveAll(work)
	})
	a := &ansible{f: f, playbook: playbook, dir: filepath.Join(fleet.RepoRoot(), "test", "bench", "ansible"),
		work: work, logs: work, inv: filepath.Join(work, "inventory.ini"), key: key}
	if out := os.Getenv("BENCH_REALHOST_OUT"); out != "" {
		a.logs = filepath.Dir(out)
		if err := os.MkdirAll(a.logs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a.inventory(t, hosts)
	out, err := exec.Command(playbook, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook --version: %v\n%s", err, out)
	}
	a.version = strings.SplitN(string(out), "\n", 2)[0]
	return a
}

// inventory writes the hosts, in order, as the group fleet.
func (a *ansible) inventory(t *testing.T, hosts []*fleet.Host) {
	var b strings.Builder
	b.WriteString("[fleet]\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s ansible_host=%s\n", h.Name, h.IP)
	}
	fmt.Fprintf(&b, "\n[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file=%s\n", a.key)
	if err := os.WriteFile(a.inv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (a *ansible) vars(version string, art demoapp.Artifact, phases []int) map[string]any {
	return map[string]any{
		"phases":   phases,
		"version":  version,
		"artifact": fleet.SharePath + "/artifacts/" + filepath.Base(art.Path),
		"port":     ansiblePort,
	}
}

// run runs one playbook to completion (bounded), failing the test with
// the tail of its output if it fails, and returns its wall time.
func (a *ansible) run(t *testing.T, book string, vars map[string]any) time.Duration {
	t.Helper()
	d, err := a.try(t, book, "", vars)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// try runs one playbook to completion, bounded by 10 minutes, with the
// given strategy ("" is Ansible's default, linear), and returns its wall
// time and, when it did not exit 0, an error with the tail of its output.
// Its output goes to a log file next to the results.
func (a *ansible) try(t *testing.T, book, strategy string, vars map[string]any) (time.Duration, error) {
	t.Helper()
	vb, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.playbook, "-i", a.inv, filepath.Join(a.dir, book), "-e", string(vb))
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(a.dir, "ansible.cfg"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(a.work, "cp"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(a.work, "tmp"),
		"ANSIBLE_NOCOLOR=1",
	)
	if strategy != "" {
		// The plays name no strategy, so the default applies to them.
		cmd.Env = append(cmd.Env, "ANSIBLE_STRATEGY="+strategy)
	}
	if os.Getenv("BENCH_ANSIBLE_PROFILE") != "" {
		// Per-task timings in the playbook's log (ansible.posix, shipped in
		// Debian's ansible package); off by default, it adds output.
		cmd.Env = append(cmd.Env, "ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks")
	}
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if ctx.Err() != nil {
		t.Fatalf("ansible-playbook %s: still running after 10m\n%s", book, tail(string(out), 60))
	}
	name := "ansible-" + strings.TrimSuffix(book, ".yml") + "-" + fmt.Sprint(vars["version"])
	if strategy != "" {
		name += "-" + strategy
	}
	_ = os.WriteFile(filepath.Join(a.logs, name+".log"), out, 0o644)
	if err != nil {
		return d, fmt.Errorf("ansible-playbook %s: %v\n%s", book, err, tail(string(out), 60))
	}
	return d, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
