package ci

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
)

var demoBin string

// envAsCLI makes the test binary act as the rollwave CLI: the shell
// pipeline runs it under the name "rollwave" (a symlink), so the test
// needs no second build of the command.
const envAsCLI = "ROLLWAVE_CI_TEST_AS_CLI"

// The demo app is built once; every goroutine a test started is gone at
// the end.
func TestMain(m *testing.M) {
	if os.Getenv(envAsCLI) == "1" {
		os.Exit(cli.Run(cli.NewRootCommand("test"), os.Args[1:], os.Stdout, os.Stderr))
	}
	demoapp.RunTests(m, &demoBin, func() error { return goleak.Find() })
}

// cluster is one in-process coordinator and one agent (process driver)
// that the releases of these tests roll out to.
type cluster struct {
	t                  *testing.T
	addr               string
	dir                string
	blue, green, proxy int
}

func newCluster(t *testing.T) *cluster {
	c := coordtest.NewCluster(t, 1)
	l := c.Leader(30 * time.Second)
	agenttest.Start(t, "h1", "edge", agenttest.Options{Join: l.GossipAddr()})
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		return l.AgentConnected("h1") && l.FSM().State().Host("h1") != nil, "agent h1 not registered"
	})
	ports := testutil.FreePorts(t, 3)
	return &cluster{t: t, addr: l.GRPCAddr(), dir: t.TempDir(), blue: ports[0], green: ports[1], proxy: ports[2]}
}

// spec writes a release spec of the demo app and returns its path.
func (c *cluster) spec(name, version string, healthy bool, bake string) string {
	c.t.Helper()
	a, err := demoapp.Package(demoBin, c.dir, version, healthy)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.dir, name+".hcl")
	if err := os.WriteFile(path, []byte(demoapp.Spec(name, version, a, c.blue, c.green, c.proxy, bake)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// rollwave runs the CLI in this process.
func (c *cluster) rollwave(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(cli.NewRootCommand("test"), append([]string{"-address", c.addr}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// release start -wait: 0 when the release succeeds, 1 when it is rolled
// back, 9 when -timeout passes first; -json prints one object per line.
func TestReleaseStartWaitExitCodes(t *testing.T) {
	c := newCluster(t)

	code, out, errOut := c.rollwave("release", "start", c.spec("demo-1", "1.0.0", true, "1s"), "-wait", "-timeout", "2m")
	if code != cli.ExitOK {
		t.Fatalf("healthy release: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "demo-1  succeeded") {
		t.Fatalf("no final succeeded line:\n%s", out)
	}
	t.Logf("succeeded:\n%s", out)

	code, out, errOut = c.rollwave("release", "start", c.spec("demo-2", "2.0.0", false, "1s"), "-wait", "-timeout", "2m", "-json")
	if code != cli.ExitError {
		t.Fatalf("unhealthy release: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var final struct {
		Release, State, Outcome string
		ExitCode                *int `json:"exit_code"`
	}
	for i, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("-json line %d is not one JSON object: %v\n%s", i, err, l)
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil {
		t.Fatal(err)
	}
	if final.Release != "demo-2" || final.Outcome != "rolled_back" || final.ExitCode == nil || *final.ExitCode != 1 {
		t.Fatalf("final -json line = %+v\n%s", final, out)
	}
	if !strings.Contains(errOut, "release demo-2 ended rolled_back") {
		t.Fatalf("stderr does not say how it ended:\n%s", errOut)
	}

	start := time.Now()
	code, out, errOut = c.rollwave("release", "start", c.spec("demo-3", "3.0.0", true, "1h"), "-wait", "-timeout", "3s")
	if code != cli.ExitTimedOut {
		t.Fatalf("release baking 1h with -timeout 3s: exit %d, want %d\n%s\n%s", code, cli.ExitTimedOut, out, errOut)
	}
	if !strings.Contains(errOut, "timed out after 3s waiting for release demo-3") {
		t.Fatalf("stderr:\n%s", errOut)
	}
	t.Logf("timed out after %s:\n%s%s", time.Since(start).Round(time.Millisecond), out, errOut)

	// status -wait on the same release times out too; -watch with -wait is
	// a usage error.
	if code, _, errOut := c.rollwave("release", "status", "demo-3", "-wait", "-timeout", "1s"); code != cli.ExitTimedOut {
		t.Fatalf("status -wait: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := c.rollwave("release", "status", "demo-3", "-wait", "-watch"); code != cli.ExitUsage {
		t.Fatalf("-wait -watch: exit %d\n%s", code, errOut)
	}
	if code, _, _ := c.rollwave("release", "status", "no-such", "-wait", "-timeout", "5s"); code != cli.ExitNotFound {
		t.Fatalf("status -wait of an unknown release: exit %d, want %d", code, cli.ExitNotFound)
	}
}

// The shell pipeline in this directory, with this tree's CLI as
// "rollwave" (the test binary itself, see envAsCLI), against the
// in-process cluster: 0 on success, 1 on rollback.
func TestShellPipeline(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, "rollwave")); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	run := func(spec, timeout string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "./deploy.sh", spec, timeout)
		cmd.Env = append(os.Environ(), envAsCLI+"=1",
			"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), cli.EnvAddress+"="+c.addr)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		return code, string(out)
	}
	code, out := run(c.spec("demo-1", "1.0.0", true, "1s"), "2m")
	if code != 0 || !strings.Contains(out, "deploy: "+filepath.Join(c.dir, "demo-1.hcl")+" succeeded") {
		t.Fatalf("deploy.sh of a healthy release: exit %d\n%s", code, out)
	}
	t.Logf("pipeline, healthy release:\n%s", out)
	code, out = run(c.spec("demo-2", "2.0.0", false, "1s"), "2m")
	if code != 1 || !strings.Contains(out, "rolled back, failed or aborted") {
		t.Fatalf("deploy.sh of an unhealthy release: exit %d, want 1\n%s", code, out)
	}
	code, out = run(filepath.Join(c.dir, "missing.hcl"), "2m")
	if code == 0 {
		t.Fatalf("deploy.sh of a missing file succeeded:\n%s", out)
	}
}
