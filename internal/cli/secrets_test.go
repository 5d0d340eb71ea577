package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSecurityTokenFromFile (issue 11 item 11b): the token could only be
// passed as -token (visible in ps) or ROLLWAVE_TOKEN. -token-file and
// ROLLWAVE_TOKEN_FILE keep it off the command line; flags beat the
// environment, and both forms at one level are a usage error.
func TestSecurityTokenFromFile(t *testing.T) {
	t.Setenv(EnvToken, "")
	t.Setenv(EnvTokenFile, "")
	f := &aclFake{}
	addr := startACLFake(t, f)
	dir := t.TempDir()
	fileTok := filepath.Join(dir, "token")
	if err := os.WriteFile(fileTok, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env-token")
	if err := os.WriteFile(envFile, []byte("env-file-secret"), 0o600); err != nil {
		t.Fatal(err)
	}

	runAt(t, addr, "-token-file", fileTok, "release", "list").expect(t, ExitOK)
	if got := f.lastToken(); got != "Bearer file-secret" {
		t.Errorf("-token-file: authorization = %q, want the file's secret (trimmed)", got)
	}
	t.Setenv(EnvTokenFile, envFile)
	runAt(t, addr, "release", "list").expect(t, ExitOK)
	if got := f.lastToken(); got != "Bearer env-file-secret" {
		t.Errorf("%s: authorization = %q, want the file's secret", EnvTokenFile, got)
	}
	// Flags beat the environment.
	runAt(t, addr, "-token-file", fileTok, "release", "list").expect(t, ExitOK)
	if got := f.lastToken(); got != "Bearer file-secret" {
		t.Errorf("-token-file over %s: authorization = %q", EnvTokenFile, got)
	}
	// Both forms at one level: usage error, no call made.
	calls := len(f.tokens)
	r := runAt(t, addr, "-token", "x", "-token-file", fileTok, "release", "list").expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "both -token and -token-file") {
		t.Errorf("stderr: %s", r.stderr)
	}
	t.Setenv(EnvToken, "y")
	r = runAt(t, addr, "release", "list").expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "both "+EnvToken+" and "+EnvTokenFile) {
		t.Errorf("stderr: %s", r.stderr)
	}
	t.Setenv(EnvToken, "")
	t.Setenv(EnvTokenFile, "")
	// A missing or empty file is an error naming it, not an anonymous call.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), empty} {
		r = runAt(t, addr, "-token-file", p, "release", "list").expect(t, ExitError)
		if !strings.Contains(r.stderr, p) {
			t.Errorf("-token-file %s: stderr does not name the file: %s", p, r.stderr)
		}
	}
	if len(f.tokens) != calls {
		t.Errorf("refused invocations still called the server (%d calls, want %d)", len(f.tokens), calls)
	}
}

// TestSecuritySecretRedactionCLI (issue 11 item 11a): -json output and
// event lines hide URL credentials even when an older server sends them.
func TestSecuritySecretRedactionCLI(t *testing.T) {
	rel := &rollwavev1.Release{Id: "api-1", Spec: &rollwavev1.ReleaseSpec{
		Artifact: &rollwavev1.Artifact{Url: "https://deploy:hunter2@artifacts.internal/api.tgz"}}}
	var b bytes.Buffer
	if err := writeJSON(&b, rel); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "https://deploy:xxxxx@artifacts.internal/api.tgz") {
		t.Errorf("-json output: %s", b.String())
	}
	b.Reset()
	eventLine(&b, &rollwavev1.Event{Kind: "host.failed", Message: "fetch https://deploy:hunter2@artifacts.internal/api.tgz: 404"})
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("event line: %s", b.String())
	}
}

// TestSecurityTokenFromFileKeyring (issue 11 item 11b): gossip keys for the
// keyring commands could only be written on the command line. KEY may now
// be @FILE.
func TestSecurityTokenFromFileKeyring(t *testing.T) {
	f := &fakeKeyring{keys: []string{key1}, primary: key1}
	p := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(p, []byte(key2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-address", "10.0.0.1:7420", "operator", "gossip", "keyring"}
	runKeyring(t, f, append(base, "-install", "@"+p)...).expect(t, ExitOK)
	runKeyring(t, f, append(base, "-use", "@"+p)...).expect(t, ExitOK)
	if want := []string{"install " + key2, "use " + key2}; strings.Join(f.calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	r := runKeyring(t, f, append(base, "-remove", "@"+p+".missing")...).expect(t, ExitError)
	if !strings.Contains(r.stderr, p+".missing") || len(f.calls) != 2 {
		t.Errorf("missing key file: stderr %q, calls %v", r.stderr, f.calls)
	}
}
