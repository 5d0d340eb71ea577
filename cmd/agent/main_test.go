package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/testutil"
)

// Bad settings are a clear error and exit 1 (2 for usage), never a crash,
// and nothing is left running.
func TestAgentRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.hcl", "cell = \"a\"\njoin = [\"127.0.0.1:7422\"]\ncolour = \"blue\"\n")
	data := filepath.Join(dir, "data")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		// A field the config format does not know, with its position.
		{"unknown field", []string{"-config", unknown}, 1, "unknown.hcl:3:1"},
		// A join address without a port.
		{"malformed join address", []string{"-cell", "a", "-data-dir", data, "-join", "nonsense"}, 1, "nonsense"},
		// Nothing listens there: the join times out with the address named.
		{"unreachable join address", []string{"-cell", "a", "-data-dir", data, "-unit-driver", "process",
			"-gossip-addr", testutil.FreeAddr(t), "-join", testutil.FreeAddr(t), "-join-timeout", "1s"}, 1, "join gossip pool"},
		{"missing cell", []string{"-data-dir", data, "-join", "127.0.0.1:7422"}, 1, "cell"},
		{"unknown driver", []string{"-cell", "a", "-data-dir", data, "-join", "127.0.0.1:7422", "-unit-driver", "docker"}, 1, "unit_driver"},
		{"unknown flag", []string{"-no-such-flag"}, 2, "no-such-flag"},
		{"bad label", []string{"-cell", "a", "-label", "novalue", "-join", "127.0.0.1:7422"}, 2, "key=value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d (want %d); stderr:\n%s\n(want %q)", code, tc.code, errb.String(), tc.want)
			}
		})
	}
}

func TestAgentVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "rollwave-agent ") {
		t.Fatalf("exit %d, %q %q", code, out.String(), errb.String())
	}
}
