package cli

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "rollwave-ca.pem")
	caKey := filepath.Join(dir, "rollwave-ca-key.pem")

	r := run(t, "tls", "ca", "create", "-dir", dir, "-days", "30").expect(t, ExitOK)
	assertLines(t, r.stdout,
		"==> CA certificate saved to: "+ca,
		"==> CA certificate key saved to: "+caKey)
	if c := readCert(t, ca); !c.IsCA {
		t.Error("CA certificate is not a CA")
	}
	// A second CA in the same place would overwrite: refused, exit 1.
	r = run(t, "tls", "ca", "create", "-dir", dir).expect(t, ExitError)
	if !strings.Contains(r.stderr, "already exists") {
		t.Errorf("stderr %q", r.stderr)
	}

	// Certificates of each kind; the second server gets index 1.
	certCases := []struct {
		args []string
		file string
		dns  []string
	}{
		{[]string{"-server", "-additional-dnsname", "coord1.example.com", "-additional-ipaddress", "10.0.0.11"},
			"global-server-rollwave-0.pem", []string{"server.global.rollwave", "localhost", "coord1.example.com"}},
		{[]string{"-server"}, "global-server-rollwave-1.pem", []string{"server.global.rollwave", "localhost"}},
		{[]string{"-agent", "-region", "eu"}, "eu-agent-rollwave-0.pem", []string{"agent.eu.rollwave"}},
		{[]string{"--cli"}, "global-cli-rollwave-0.pem", []string{"cli.global.rollwave"}},
	}
	for _, tc := range certCases {
		args := append([]string{"tls", "cert", "create", "-ca", ca, "-key", caKey, "-dir", dir}, tc.args...)
		r := run(t, args...).expect(t, ExitOK)
		file := filepath.Join(dir, tc.file)
		if !strings.Contains(r.stdout, "certificate saved to: "+file) ||
			!strings.Contains(r.stdout, "certificate key saved to: "+strings.TrimSuffix(file, ".pem")+"-key.pem") {
			t.Errorf("%v: stdout %q does not name %s", tc.args, r.stdout, file)
		}
		if got := readCert(t, file).DNSNames; !slices.Equal(got, tc.dns) {
			t.Errorf("%v: DNS names %v, want %v", tc.args, got, tc.dns)
		}
	}
}

// Without -ca/-key the files are looked up by domain in the current directory.
func TestTLSCertDefaultCAFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	run(t, "tls", "ca", "create", "-domain", "corp").expect(t, ExitOK)
	r := run(t, "tls", "cert", "create", "-agent", "-domain", "corp").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "Using CA file corp-ca.pem and CA key corp-ca-key.pem") {
		t.Errorf("stdout %q", r.stdout)
	}
	if got := readCert(t, filepath.Join(dir, "global-agent-corp-0.pem")).DNSNames; !slices.Equal(got, []string{"agent.global.corp"}) {
		t.Errorf("DNS names %v", got)
	}
}

func TestTLSCommandErrors(t *testing.T) {
	dir := t.TempDir()
	run(t, "tls", "ca", "create", "-dir", dir).expect(t, ExitOK)
	ca, key := filepath.Join(dir, "rollwave-ca.pem"), filepath.Join(dir, "rollwave-ca-key.pem")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		// Usage errors: no kind, two kinds, bad values, arguments.
		{"no kind", []string{"tls", "cert", "create", "-ca", ca, "-key", key}, ExitUsage, "exactly one of -server, -agent or -cli"},
		{"two kinds", []string{"tls", "cert", "create", "-server", "-agent", "-ca", ca, "-key", key}, ExitUsage, "exactly one of"},
		{"bad ip", []string{"tls", "cert", "create", "-server", "-additional-ipaddress", "10.0.0", "-ca", ca, "-key", key}, ExitUsage, `invalid -additional-ipaddress "10.0.0"`},
		{"zero days", []string{"tls", "cert", "create", "-server", "-days", "0", "-ca", ca, "-key", key}, ExitUsage, "invalid -days 0"},
		{"ca negative days", []string{"tls", "ca", "create", "-days", "-5", "-dir", t.TempDir()}, ExitUsage, "invalid -days -5"},
		{"ca argument", []string{"tls", "ca", "create", "extra"}, ExitUsage, "takes no arguments"},
		{"unknown tls subcommand", []string{"tls", "crl"}, ExitUsage, `unknown command "crl"`},
		// Failures: a missing CA, a role name smuggled in as an extra name.
		{"missing CA", []string{"tls", "cert", "create", "-server", "-ca", filepath.Join(dir, "nope.pem"), "-key", key, "-dir", dir}, ExitError, "nope.pem"},
		{"role in extra name", []string{"tls", "cert", "create", "-agent", "-additional-dnsname", "server.global.rollwave", "-ca", ca, "-key", key, "-dir", dir}, ExitError, "role label"},
		{"bad region", []string{"tls", "cert", "create", "-agent", "-region", "eu west", "-ca", ca, "-key", key, "-dir", dir}, ExitError, "invalid region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args...).expect(t, tc.code)
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if (tc.code == ExitUsage) != strings.Contains(r.stderr, "Usage:") {
				t.Errorf("usage shown wrongly for exit %d: %q", tc.code, r.stderr)
			}
		})
	}
	// Nothing was written by the failures.
	matches, _ := filepath.Glob(filepath.Join(dir, "*-agent-*"))
	if len(matches) != 0 {
		t.Errorf("failed commands wrote %v", matches)
	}
}
