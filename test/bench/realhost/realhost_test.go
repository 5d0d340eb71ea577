//go:build e2e

package realhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// ansiblePort is where the Ansible-managed copy of the demo app listens
// in each host, next to rollwave's slots (fleet.Demo*Port).
const ansiblePort = 18090

const (
	relSucceeded  = rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED
	relRolledBack = rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	phBaking      = rollwavev1.PhaseState_PHASE_STATE_BAKING
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// TestRealHostBench boots BENCH_HOSTS (default 20) real systemd hosts in
// 4 cells with the agent from the .deb and sshd, then
//
//   - peer comparison: BENCH_ROUNDS (default 2) times, a new version of the
//     demo app rolled out by rollwave (zero bake, canary 1, factor 2) and
//     then by Ansible `serial` with the same phase sizes over the same
//     hosts in the same order (test/bench/ansible/rollout.yml), each timed
//     wall clock;
//   - isolation: BENCH_ISOLATION_ROUNDS (default 3) releases whose canary
//     phase (4 hosts) is cut off 3 s into its bake; each cut host must
//     answer the old version by itself within isolation_timeout + 2 s.
//
// The figures go to the log (lines starting BENCH) and, as a Result, to
// $BENCH_REALHOST_OUT.
func TestRealHostBench(t *testing.T) {
	n := envInt(t, "BENCH_HOSTS", 20)
	rounds := envInt(t, "BENCH_ROUNDS", 2)
	isoRounds := envInt(t, "BENCH_ISOLATION_ROUNDS", 3)
	if n < 5 {
		t.Fatalf("BENCH_HOSTS=%d: need at least 5 hosts", n)
	}
	playbook, err := exec.LookPath("ansible-playbook")
	if err != nil && rounds > 0 {
		t.Skip("the peer comparison needs Ansible: apt-get install -y ansible (or BENCH_ROUNDS=0)")
	}

	f := fleet.New(t, fleet.Options{BootTimeout: 3 * time.Minute})
	if _, err := f.AgentDeb(); err != nil {
		t.Fatal(err)
	}
	cs := f.StartCoordinators(3)
	hosts := f.Boot(n)
	const cells = 4
	start := time.Now()
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.InstallAgent(h, fmt.Sprintf("cell-%c", 'a'+i%cells), fleet.AgentOptions{}); err != nil {
				errs[i] = err
				return
			}
			if rounds > 0 {
				errs[i] = f.EnableSSH(h)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	cs.WaitConnected(hosts, 2*time.Minute)
	t.Logf("agents installed and connected, sshd up on %d hosts: %s", n, time.Since(start).Round(time.Millisecond))

	res := &Result{Hosts: n, Cells: cells}
	defer func() {
		if out := os.Getenv("BENCH_REALHOST_OUT"); out != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				t.Error(err)
			} else if err := os.WriteFile(out, b, 0o644); err != nil {
				t.Error(err)
			}
		}
	}()

	// v1 everywhere, by both tools, untimed: every later round replaces a
	// running version.
	served := "1.0.0"
	art := f.PublishDemo(served, true)
	id := startRelease(t, cs, comparisonSpec(served, art))
	waitRelease(t, cs, id, relSucceeded, 5*time.Minute)

	var an *ansible
	if rounds > 0 {
		an = newAnsible(t, f, playbook, hosts)
		res.AnsibleVersion = an.version
		an.run(t, "setup.yml", map[string]any{"port": ansiblePort})
		an.run(t, "rollout.yml", an.vars(served, art, []int{n}))
	}

	for r := 0; r < rounds; r++ {
		version := fmt.Sprintf("%d.0.0", r+2)
		art := f.PublishDemo(version, true)

		t0 := time.Now()
		id := startRelease(t, cs, comparisonSpec(version, art))
		resp := waitRelease(t, cs, id, relSucceeded, 5*time.Minute)
		rw := time.Since(t0)
		rel := resp.GetRelease()
		recorded := time.Duration(rel.GetUpdatedUnixNano() - rel.GetCreatedUnixNano())
		var phases []int
		var order []*fleet.Host
		for _, p := range rel.GetPhases() {
			phases = append(phases, len(p.GetHosts()))
			for _, name := range p.GetHosts() {
				order = append(order, f.Host(name))
			}
		}
		if len(order) != n {
			t.Fatalf("release %s planned %d hosts, want %d", id, len(order), n)
		}
		for _, h := range hosts {
			waitServes(t, h, fleet.DemoTrafficPort, version)
		}
		res.Phases = phases

		an.inventory(t, order)
		t1 := time.Now()
		an.run(t, "rollout.yml", an.vars(version, art, phases))
		ans := time.Since(t1)
		for _, h := range hosts {
			waitServes(t, h, ansiblePort, version)
		}
		round := Round{Version: version, RollwaveSeconds: rw.Seconds(), RollwaveRecordedSeconds: recorded.Seconds(),
			AnsibleSeconds: ans.Seconds(), Ratio: ans.Seconds() / rw.Seconds()}
		res.Rounds = append(res.Rounds, round)
		t.Logf("BENCH peer round %d (%s, %d hosts, phases %v): rollwave %.2f s (recorded %.2f s), ansible serial %.2f s, ratio %.1f×",
			r+1, version, n, phases, round.RollwaveSeconds, round.RollwaveRecordedSeconds, round.AnsibleSeconds, round.Ratio)
		served = version
	}
	if len(res.Rounds) > 0 {
		var rws, ans []float64
		for _, r := range res.Rounds {
			rws, ans = append(rws, r.RollwaveSeconds), append(ans, r.AnsibleSeconds)
		}
		res.RollwaveMedian, res.AnsibleMedian = median(rws), median(ans)
		res.Ratio = res.AnsibleMedian / res.RollwaveMedian
		t.Logf("BENCH peer comparison: rollwave median %.2f s, ansible serial median %.2f s over %d round(s): rollwave %.1f× faster",
			res.RollwaveMedian, res.AnsibleMedian, len(res.Rounds), res.Ratio)
	}

	if isoRounds > 0 {
		res.Isolation = isolationBench(t, f, cs, hosts, served, isoRounds)
	}
}

// demoSpec is a release of the demo app on the fleet's demo ports. The
// other arguments are the bodies (attribute lines) of its phases, bake
// and rollback blocks; check is the health check's interval and timeout,
// minHealthy its min_healthy_time.
func demoSpec(version string, a demoapp.Artifact, phases string, check, minHealthy time.Duration, bake, rollback string) string {
	return fmt.Sprintf(`release "demo-%[1]s" {
  app     = "demo"
  version = %[1]q
  artifact {
    url    = %[2]q
    sha256 = %[3]q
  }
  unit {
    exec_start = "{{slot_dir}}/bin/demo-app -dir {{slot_dir}} -listen 127.0.0.1:{{port}}"
  }
  slots {
    blue_port  = %[4]d
    green_port = %[5]d
    keep_old   = "hot"
  }
  traffic {
    mode   = "proxy"
    listen = "127.0.0.1:%[6]d"
  }
  phases {
%[7]s
  }
  health {
    check "http" {
      url      = "http://127.0.0.1:{{port}}/healthz"
      interval = %[8]q
      timeout  = %[8]q
    }
    min_healthy_time = %[9]q
    healthy_deadline = "30s"
  }
  bake {
%[10]s
  }
  gates {
    max_failed_hosts = 0
  }
  rollback {
%[11]s
  }
}
`, version, a.URL, a.SHA256, fleet.DemoBluePort, fleet.DemoGreenPort, fleet.DemoTrafficPort,
		phases, check.String(), minHealthy.String(), bake, rollback)
}

// comparisonSpec is the release both tools are timed on: zero bake (bake
// must be positive: 1 ms), canary 1 then doubling, at most a quarter of
// the fleet per phase; a host counts as healthy at its first passing
// /healthz check (min_healthy_time 1 ms), as Ansible's uri check does.
func comparisonSpec(version string, a demoapp.Artifact) string {
	return demoSpec(version, a,
		"    canary = 1\n    growth = \"geometric\"\n    factor = 2\n    max_size = \"25%\"",
		100*time.Millisecond, time.Millisecond,
		"    first = \"1ms\"\n    decay = 1\n    min = \"1ms\"",
		"    isolation_timeout = \"30s\"")
}

// isolationSpec: the canary phase is canary hosts baking for a minute,
// isolation_timeout as given; a failed host rolls everything back.
func isolationSpec(version string, a demoapp.Artifact, canary int, isolation time.Duration) string {
	return demoSpec(version, a,
		fmt.Sprintf("    canary = %d", canary),
		200*time.Millisecond, 200*time.Millisecond,
		"    first = \"60s\"\n    decay = 1\n    min = \"1s\"",
		fmt.Sprintf("    on_failure = \"all\"\n    isolation_timeout = %q", isolation.String()))
}

// isolationBench cuts the canary phase's hosts 3 s into its bake and
// measures, per host, cut → its traffic port (queried inside it) answers
// the old version again. Each round heals the hosts and waits for the
// release to roll back before the next.
func isolationBench(t *testing.T, f *fleet.Fleet, cs *fleet.Coordinators, hosts []*fleet.Host, old string, rounds int) *Isolation {
	const isolation = 5 * time.Second
	const canary = 4
	iso := &Isolation{TimeoutSeconds: isolation.Seconds(), Rounds: rounds}
	for r := 0; r < rounds; r++ {
		version := fmt.Sprintf("9.%d.0", r)
		art := f.PublishDemo(version, true)
		id := startRelease(t, cs, isolationSpec(version, art, canary, isolation))
		resp := waitPhase(t, cs, id, 0, phBaking, 2*time.Minute)
		p0 := resp.GetRelease().GetPhases()[0]
		var cut []*fleet.Host
		for _, name := range p0.GetHosts() {
			h := f.Host(name)
			waitServes(t, h, fleet.DemoTrafficPort, version)
			cut = append(cut, h)
		}
		into := time.Unix(0, p0.GetBakeDeadlineUnixNano()).Add(-time.Duration(p0.GetBakeMs())*time.Millisecond + 3*time.Second)
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			return !time.Now().Before(into), fmt.Sprintf("%s to 3 s into the canary's bake", time.Until(into).Round(time.Millisecond))
		})

		limit := isolation + 10*time.Second
		got := make([]time.Duration, len(cut))
		var wg sync.WaitGroup
		for i, h := range cut {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if err := h.Cut(); err != nil {
					t.Error(err)
					return
				}
				for time.Since(t0) < limit {
					if v, err := h.ServedVersion(); err == nil && v == old {
						got[i] = time.Since(t0)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		for i, h := range cut {
			if got[i] == 0 {
				iso.Missed++
				t.Errorf("isolation round %d: %s did not answer %s within %s of the cut\n%s", r+1, h.Name, old, limit, h.Journal(fleet.AgentUnit, 20))
				continue
			}
			iso.Seconds = append(iso.Seconds, got[i].Seconds())
			t.Logf("BENCH isolation round %d: %s cut → answers %s again: %.2f s (isolation_timeout %s)", r+1, h.Name, old, got[i].Seconds(), isolation)
		}
		for _, h := range cut {
			if err := h.Heal(); err != nil {
				t.Fatal(err)
			}
		}
		waitRelease(t, cs, id, relRolledBack, 3*time.Minute)
		for _, h := range hosts {
			waitServes(t, h, fleet.DemoTrafficPort, old)
		}
	}
	if len(iso.Seconds) > 0 {
		iso.P50 = median(iso.Seconds)
		iso.Max = slices.Max(iso.Seconds)
	}
	t.Logf("BENCH isolation: %d cut hosts over %d rounds, cut → old version p50 %.2f s, max %.2f s (isolation_timeout %s, target ≤ %s), missed %d",
		len(iso.Seconds), rounds, iso.P50, iso.Max, isolation, isolation+2*time.Second, iso.Missed)
	return iso
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

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
// the tail of its output if it fails.
func (a *ansible) run(t *testing.T, book string, vars map[string]any) {
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
	if os.Getenv("BENCH_ANSIBLE_PROFILE") != "" {
		// Per-task timings in the playbook's log (ansible.posix, shipped in
		// Debian's ansible package); off by default, it adds output.
		cmd.Env = append(cmd.Env, "ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks")
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ansible-playbook %s: still running after 10m\n%s", book, tail(string(out), 60))
	}
	log := filepath.Join(a.logs, "ansible-"+strings.TrimSuffix(book, ".yml")+"-"+fmt.Sprint(vars["version"])+".log")
	_ = os.WriteFile(log, out, 0o644)
	if err != nil {
		t.Fatalf("ansible-playbook %s: %v\n%s", book, err, tail(string(out), 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
