package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
)

// The acceptance test of operator ACLs, through the real CLI against a
// real 3-server cluster: a read token cannot start a release, a deploy
// token can submit one, and the audit trail names the token.
func TestACLThroughCLI(t *testing.T) {
	t.Setenv("ROLLWAVE_TOKEN", "")
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	c.Leader(30 * time.Second)
	addr := c.Followers()[0].GRPCAddr()
	spec := filepath.Join(t.TempDir(), "web.hcl")
	if err := os.WriteFile(spec, []byte(goodSpec), 0o644); err != nil {
		t.Fatal(err)
	}

	// A follower answers only once it has heard from the leader; until
	// then it says Unavailable (exit 9), which the CLI tells users to retry.
	var code int
	var stderr string
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		code, _, stderr = run(t, "release", "list", "-address", addr)
		return code != cli.ExitUnavailable, stderr
	})
	if code != cli.ExitConflict || !strings.Contains(stderr, "rollwave acl bootstrap") {
		t.Fatalf("before bootstrap: exit %d, %s", code, stderr)
	}
	secret := func(args ...string) string {
		t.Helper()
		code, out, stderr := run(t, append(args, "-address", addr, "-json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var resp struct{ Secret string }
		if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Secret == "" {
			t.Fatalf("%v: %q: %v", args, out, err)
		}
		return resp.Secret
	}
	admin := secret("acl", "bootstrap")
	if code, _, stderr := run(t, "acl", "bootstrap", "-address", addr); code != cli.ExitConflict || !strings.Contains(stderr, "already done") {
		t.Fatalf("second bootstrap: exit %d, %s", code, stderr)
	}
	reader := secret("acl", "token", "create", "-name", "ci", "-role", "read", "-token", admin)
	deployer := secret("acl", "token", "create", "-name", "alice", "-role", "deploy", "-token", admin)

	if code, _, stderr := run(t, "release", "list", "-address", addr, "-token", reader); code != 0 {
		t.Fatalf("read token lists: exit %d, %s", code, stderr)
	}
	code, _, stderr = run(t, "release", "start", spec, "-address", addr, "-token", reader)
	if code != cli.ExitDenied || !strings.Contains(stderr, "SubmitRelease needs role deploy") {
		t.Fatalf("read token starts a release: exit %d, %s", code, stderr)
	}
	code, _, stderr = run(t, "release", "list", "-address", addr, "-token", "wrong")
	if code != cli.ExitDenied || !strings.Contains(stderr, "token not found") {
		t.Fatalf("unknown token: exit %d, %s", code, stderr)
	}
	t.Setenv("ROLLWAVE_TOKEN", deployer)
	if code, _, stderr := run(t, "release", "submit", spec, "-address", addr); code != 0 {
		t.Fatalf("deploy token submits: exit %d, %s", code, stderr)
	}
	code, out, _ := run(t, "release", "get", "web-1.0.0", "-address", addr, "-json")
	if code != 0 || !strings.Contains(out, `"created_by": "alice"`) {
		t.Fatalf("release created by: exit %d, %s", code, out)
	}
	code, out, _ = run(t, "acl", "token", "list", "-address", addr)
	if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, "ci ") || strings.Contains(out, deployer) {
		t.Fatalf("deploy token lists its own token only: exit %d, %s", code, out)
	}
}

func TestServerACLSetting(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "server.hcl")
	if err := os.WriteFile(cfgFile, []byte("dev = true\nacl {\n  enabled = true\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--dev"}, false},
		{[]string{"--dev", "--acl-enabled"}, true},
		{[]string{"--config", cfgFile}, true},
		{[]string{"--config", cfgFile, "--acl-enabled=false"}, false},
	} {
		var f serverFlags
		cmd := newServerCommandWith(&f)
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(cmd.Flags())
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.ACLEnabled != tc.want {
			t.Errorf("%v: ACLEnabled = %v, want %v", tc.args, cfg.ACLEnabled, tc.want)
		}
	}
}
