package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// withExtra is minimal.hcl with extra inserted before the release
// block's closing brace.
func withExtra(t *testing.T, extra string) []byte {
	t.Helper()
	src := minimalSrc(t)
	i := strings.LastIndex(src, "}")
	return []byte(src[:i] + extra + src[i:])
}

func TestParseReleaseHooks(t *testing.T) {
	r, err := ParseRelease("spec.hcl", withExtra(t, `
  hook "post_switch" {
    exec    = ["/usr/local/bin/smoke", "http://127.0.0.1:{{port}}/"]
    timeout = "45s"
  }
  hook "drain" {
    exec = ["{{slot_dir}}/bin/drain", "{{app}}"]
  }
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []speccore.Hook{
		{Name: speccore.HookPostSwitch, Exec: []string{"/usr/local/bin/smoke", "http://127.0.0.1:{{port}}/"}, Timeout: 45 * time.Second},
		{Name: speccore.HookDrain, Exec: []string{"{{slot_dir}}/bin/drain", "{{app}}"}, Timeout: speccore.DefaultHookTimeout},
	}
	if len(r.Hooks) != len(want) {
		t.Fatalf("hooks = %+v, want %+v", r.Hooks, want)
	}
	for i := range want {
		g, w := r.Hooks[i], want[i]
		if g.Name != w.Name || strings.Join(g.Exec, "\x00") != strings.Join(w.Exec, "\x00") || g.Timeout != w.Timeout {
			t.Errorf("hook %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseReleaseHooksInvalid(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		want  []string // substrings of the error, each required
	}{
		// Only the five names; the message lists them.
		{"unknown name", `hook "post_deploy" { exec = ["/bin/true"] }`,
			[]string{`release.hook[0].name: unknown hook "post_deploy"; a hook is one of pre_switch, post_switch, drain, pre_revert, post_revert`}},
		// One block per name.
		{"duplicate", "hook \"drain\" { exec = [\"/bin/true\"] }\nhook \"drain\" { exec = [\"/bin/false\"] }",
			[]string{`release.hook[1].name: duplicate hook "drain" (also hook 0)`}},
		// exec is required and its executable must not be empty.
		{"no exec", `hook "pre_switch" { timeout = "5s" }`, []string{`release.hook[0].exec: is required`}},
		{"empty exec", `hook "pre_switch" { exec = [] }`, []string{`release.hook[0].exec: is required`}},
		{"empty executable", `hook "pre_switch" { exec = [" ", "x"] }`, []string{`release.hook[0].exec: the executable (first element) must not be empty`}},
		// exec_start's no-prefix-character rule, quotes and all.
		{"plus prefix", `hook "post_switch" { exec = ["+/bin/sh", "-c", "id"] }`, []string{`starts with "+", which systemd reads as a command prefix`}},
		{"quoted bang prefix", `hook "post_switch" { exec = ["'!/bin/sh"] }`, []string{`starts with "!", which systemd reads as a command prefix`}},
		// No PATH search: absolute or under the slot directory.
		{"relative", `hook "post_switch" { exec = ["smoke-test"] }`, []string{`executable "smoke-test" must be an absolute path or start with {{slot_dir}}`}},
		{"port placeholder first", `hook "post_switch" { exec = ["{{port}}"] }`, []string{`must be an absolute path`}},
		// Unknown placeholders and control characters anywhere.
		{"unknown placeholder", `hook "drain" { exec = ["/bin/drain", "{{host}}"] }`, []string{`release.hook[0].exec: [1]: unknown placeholder {{host}}`}},
		{"newline", `hook "drain" { exec = ["/bin/drain", "a\nb"] }`, []string{`[1]: must not contain control characters`}},
		// Timeouts: positive and capped.
		{"zero timeout", "hook \"drain\" {\n  exec = [\"/bin/drain\"]\n  timeout = \"0s\"\n}", []string{`release.hook[0].timeout: must be a positive duration`}},
		{"huge timeout", `hook "drain" {
  exec = ["/bin/drain"]
  timeout = "11m"
}`, []string{`release.hook[0].timeout:`, `10m0s`}},
		// Unknown attributes are named.
		{"unknown field", `hook "drain" {
  exec = ["/bin/drain"]
  user = "root"
}`, []string{`release.hook[0]`, `user`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease("spec.hcl", withExtra(t, tc.extra+"\n"))
			if err == nil {
				t.Fatalf("accepted: %+v", r.Hooks)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCheckHookCommand(t *testing.T) {
	for _, ok := range [][]string{{"/bin/true"}, {"{{slot_dir}}/smoke", "{{port}}", "{{version}}"}, {"/usr/bin/env", "-i"}} {
		if err := speccore.CheckHookCommand(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range [][]string{nil, {""}, {"-/bin/true"}, {"\"@/bin/true"}, {"true"}, {"/bin/x\n"}, {"/bin/x", "{{nope}}"}} {
		if err := speccore.CheckHookCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHookPrefixes(t *testing.T) {
	for _, bad := range []string{"", "hooks/", "{{app}}/x", "{{slot_dir}}x", "/opt/../bin", "{{slot_dir}}/{{port}}", "/a\n"} {
		if err := speccore.CheckHookPrefix(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	cases := []struct {
		prefix, exe string
		ok          bool
	}{
		{"/usr/local/lib/rollwave-hooks/", "/usr/local/lib/rollwave-hooks/smoke", true},
		{"/usr/local/lib/rollwave-hooks", "/usr/local/lib/rollwave-hooks/sub/smoke", true},
		{"/usr/local/lib/rollwave-hooks/", "/usr/local/lib/rollwave-hooks-evil/smoke", false},
		{"/usr/local/lib/rollwave-hooks/", "/usr/local/lib/rollwave-hooks/../../../bin/sh", false},
		{"/usr/local/lib/rollwave-hooks/", "/usr/local/lib/rollwave-hooks/", false},
		{"{{slot_dir}}", "{{slot_dir}}/bin/smoke", true},
		{"{{slot_dir}}/hooks/", "{{slot_dir}}/bin/smoke", false},
		{"{{slot_dir}}", "{{slot_dir}}/../../../../bin/sh", false},
		{"{{slot_dir}}", "/bin/sh", false},
	}
	for _, c := range cases {
		if err := speccore.CheckHookPrefix(c.prefix); err != nil {
			t.Fatalf("prefix %q refused: %v", c.prefix, err)
		}
		if got := speccore.HookPrefixAllows(c.prefix, c.exe); got != c.ok {
			t.Errorf("HookPrefixAllows(%q, %q) = %v, want %v", c.prefix, c.exe, got, c.ok)
		}
	}
}
