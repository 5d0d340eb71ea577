package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// TestSecurityUnitCommandPrefix (issue 11 item 3): a command whose first
// word starts with one of systemd's Exec prefixes ("+", "!", "!!", "@",
// "-", ":", "|", and combinations) runs as root outside the sandbox, or
// differently from what it says, whatever unit.user is; systemd strips
// quotes before it looks, so quoted forms count too. Spec validation
// refuses each, in exec_start and in exec_start_pre, naming the field.
func TestSecurityUnitCommandPrefix(t *testing.T) {
	bad := []string{
		"+/bin/sh -c 'id'",         // full privileges
		"!/bin/sh -c id",           // privileges without ambient caps
		"!!/bin/sh -c id",          // same, for systems without ambient caps
		"@/bin/sh sh -c id",        // argv[0] override
		"-/bin/false",              // failure ignored
		":/bin/echo $HOME",         // no variable expansion
		"|/bin/sh -c id",           // via the user's shell (systemd 257)
		"+!/bin/sh -c id",          // combinations
		"-+/bin/sh",                // ...in any order
		"@-:/bin/sh sh",            // ...several
		"  +/bin/sh",               // after leading blanks
		`"+/bin/sh" -c id`,         // quoted: the splitter and systemd unquote it
		`'+/bin/sh' -c id`,         // single quotes
		`""+/bin/sh`,               // an empty quote first
		`\+/bin/sh`,                // backslash-escaped
		` "'+/bin/sh'"`,            // nested quotes after a blank
		"+{{slot_dir}}/bin/api",    // before a placeholder
		"!{{slot_dir}}/bin/api -x", // ...any prefix
	}
	for _, field := range []string{"exec_start", "exec_start_pre"} {
		for _, cmd := range bad {
			t.Run(fmt.Sprintf("%s %q", field, cmd), func(t *testing.T) {
				r := parseFile(t, "testdata/good/minimal.hcl")
				r.Unit.User = "nobody"
				want := "release.unit.exec_start"
				if field == "exec_start" {
					r.Unit.ExecStart = cmd
				} else {
					r.Unit.ExecStartPre = []string{"{{slot_dir}}/bin/migrate", cmd}
					want = "release.unit.exec_start_pre[1]"
				}
				err := r.Validate()
				if err == nil {
					t.Fatalf("%s = %q accepted; it would run with systemd's prefix semantics (as root for + and !)", field, cmd)
				}
				if !strings.Contains(err.Error(), want+": ") || !strings.Contains(err.Error(), "command prefix") {
					t.Fatalf("want an error naming %s and the command prefix, got %v", want, err)
				}
			})
		}
	}
	// Prefix characters elsewhere are plain characters: accepted.
	for _, cmd := range []string{
		"{{slot_dir}}/bin/api --listen 127.0.0.1:{{port}}",
		"/usr/bin/env -i /bin/true",
		"/opt/a+b/run --flag=+1 -v @file",
		"{{slot_dir}}/bin/x-y!",
	} {
		r := parseFile(t, "testdata/good/minimal.hcl")
		r.Unit.ExecStart = cmd
		r.Unit.ExecStartPre = []string{cmd}
		if err := r.Validate(); err != nil {
			t.Errorf("exec_start %q refused: %v", cmd, err)
		}
	}
}

// TestSecurityUnitValidatorShared (issue 11 item 12): what the agent
// refuses, spec validation refuses too, through the same checks: a
// hardening line ending in a backslash (systemd would join the next
// directive onto it), a hardening line that adds a command or sets what
// rollwave renders, and numeric users written with leading zeros ("00",
// which tools disagree about: uid 0 or a user named "00").
func TestSecurityUnitValidatorShared(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(r *Release)
		field string
		want  string
	}{
		{"hardening continuation", func(r *Release) { r.Unit.Hardening = []string{`ProtectSystem=strict \`} }, "release.unit.hardening[0]", "line continuation"},
		{"hardening adds a root command", func(r *Release) { r.Unit.Hardening = []string{"ExecStartPost=+/bin/sh -c id"} }, "release.unit.hardening[0]", "runs a command"},
		{"hardening sets User", func(r *Release) { r.Unit.Hardening = []string{"PrivateTmp=yes", "User=root"} }, "release.unit.hardening[1]", "renders itself"},
		{"user 00", func(r *Release) { r.Unit.User = "00" }, "release.unit.user", "leading zeros"},
		{"user 0000", func(r *Release) { r.Unit.User = "0000" }, "release.unit.user", "leading zeros"},
		{"user 0123", func(r *Release) { r.Unit.User = "0123" }, "release.unit.user", "leading zeros"},
		{"user uid -1", func(r *Release) { r.Unit.User = "4294967295" }, "release.unit.user", "out of range"},
		{"environment newline", func(r *Release) { r.Unit.Environment = map[string]string{"A": "x\nExecStartPost=/bin/sh"} }, "release.unit.environment.A", "control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := parseFile(t, "testdata/good/minimal.hcl")
			tc.edit(r)
			err := r.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %s (%s), got %v", tc.field, tc.want, err)
			}
		})
	}
	// The shared helpers agree with validation on the valid forms.
	for _, u := range []string{"", "0", "1000", "api", "svc_1"} {
		if err := speccore.CheckUnitUser(u); err != nil {
			t.Errorf("CheckUnitUser(%q): %v", u, err)
		}
	}
	for u, root := range map[string]bool{"": true, "root": true, "0": true, "00": true, "000": true, "10": false, "api": false, "r00t": false} {
		if speccore.IsRootUser(u) != root {
			t.Errorf("IsRootUser(%q) = %v, want %v", u, !root, root)
		}
	}
	if err := speccore.CheckHardeningLine("ProtectSystem=strict"); err != nil {
		t.Errorf("ProtectSystem=strict refused: %v", err)
	}
}
