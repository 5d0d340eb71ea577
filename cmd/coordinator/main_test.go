package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
)

// run executes the real CLI (as main does) and returns exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := cli.NewRootCommand("test")
	root.AddCommand(newServerCommand())
	var out, errb bytes.Buffer
	code := cli.Run(root, args, &out, &errb)
	return code, out.String(), errb.String()
}

const goodSpec = `release "web-1.0.0" {
  app     = "web"
  version = "1.0.0"
  artifact {
    url    = "file:///srv/web.tar.gz"
    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
  }
  unit { exec_start = "{{slot_dir}}/bin/web --port {{port}}" }
  slots {
    blue_port  = 9081
    green_port = 9082
  }
  traffic { listen = "127.0.0.1:9080" }
  health {
    check "http" { url = "http://127.0.0.1:{{port}}/healthz" }
  }
}
`

// Bad specs submitted with the CLI against a real 3-server cluster: each is
// refused with file:line, the field and the reason, exit 6 (invalid), and nothing in
// the cluster changes.
func TestReleaseSubmitBadSpecThroughCLI(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	addr := c.Followers()[0].GRPCAddr()
	dir := t.TempDir()
	cases := []struct {
		name, old, new string
		want           []string
	}{
		// An attribute the schema does not know.
		{"unknown_field", `version = "1.0.0"`, "version = \"1.0.0\"\n  colour = \"blue\"", []string{":4:3:", `unknown field "colour"`}},
		// A string where a port number belongs.
		{"wrong_type", `blue_port  = 9081`, `blue_port  = "eighty"`, []string{":10:18:", "release.slots.blue_port", "expected a number"}},
		// The checksum is required: an unverified artifact never runs.
		{"missing_sha256", `    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"` + "\n", "", []string{":4:3:", "release.artifact", `missing required field "sha256"`}},
		// Geometric growth needs a factor above 1.
		{"negative_factor", `traffic {`, "phases { factor = -2 }\n  traffic {", []string{":13:21:", "release.phases.factor", "must be greater than 1", "got -2"}},
	}
	before := leader.Raft().LastIndex()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(goodSpec, tc.old, tc.new, 1)
			if src == goodSpec {
				t.Fatal("test case did not change the spec")
			}
			path := filepath.Join(dir, tc.name+".hcl")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := run(t, "release", "submit", path, "-address", addr)
			if code != cli.ExitInvalid {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, cli.ExitInvalid, stderr)
			}
			for _, w := range append([]string{path}, tc.want...) {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	if after := leader.Raft().LastIndex(); after != before {
		t.Fatalf("refused specs changed the raft log: index %d -> %d", before, after)
	}
	code, out, _ := run(t, "release", "list", "-address", addr, "-json")
	if code != 0 || strings.Join(strings.Fields(out), "") != `{"releases":[]}` {
		t.Fatalf("release list after refused specs: exit %d, %q", code, out)
	}

	// The good spec is accepted and listed through any server.
	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte(goodSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "release", "submit", good, "-address", addr); code != 0 {
		t.Fatalf("good spec: exit %d: %s", code, stderr)
	}
	code, out, _ = run(t, "release", "list", "-address", addr)
	if code != 0 || !strings.Contains(out, "web-1.0.0") {
		t.Fatalf("release list: exit %d, %q", code, out)
	}
}

// A bad server flag or config is a clear error, not a crash, and nothing
// starts.
func TestServerCommandRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "server.hcl")
	if err := os.WriteFile(badCfg, []byte("node_name = \"c1\"\nbootstrap_expect = \"three\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"server", "-no-such-flag"}, 2, "unknown"},
		{"config with wrong type", []string{"server", "-config", badCfg}, 1, "server.hcl:2:"},
		{"missing data dir", []string{"server", "-node", "c1"}, 1, "data_dir"},
		{"bad grpc address", []string{"server", "-dev", "-grpc-addr", "nonsense"}, 1, "nonsense"},
		{"dev with bootstrap expect", []string{"server", "-dev", "-bootstrap-expect", "3"}, 1, "bootstrap_expect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.want)
			}
		})
	}
}

func TestDefaultGOGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	// GOGC set in the environment: the runtime already applied it.
	applyDefaultGOGC("200")
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the GC percent changed to %d", got)
	}
	applyDefaultGOGC("")
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Fatalf("without GOGC the GC percent is %d, want %d", got, defaultGOGC)
	}
}
