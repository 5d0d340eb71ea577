package agent

import (
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The agent holds an order's lifecycle hooks to the spec's rules itself
// (a forged or old coordinator may not have checked them), and to its
// hook_prefixes; hooks run as unit.user, so the user rules cover them.
func TestPolicyCheckHooks(t *testing.T) {
	spec := func(user string, hooks ...*rollwavev1.HookSpec) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Artifact: &rollwavev1.Artifact{Url: "file:///srv/a.tgz"},
			Unit: &rollwavev1.UnitSpec{User: user, ExecStart: "{{slot_dir}}/bin/api"}, Hooks: hooks}
	}
	hook := func(name string, exec ...string) *rollwavev1.HookSpec {
		return &rollwavev1.HookSpec{Name: name, Exec: exec, TimeoutMs: 30_000}
	}
	open := Policy{AllowRoot: true}
	prefixed := Policy{AllowRoot: true, HookPrefixes: []string{"/usr/local/lib/rollwave-hooks/", "{{slot_dir}}/hooks"}}
	cases := []struct {
		name string
		p    Policy
		spec *rollwavev1.ReleaseSpec
		want string // "" = allowed
	}{
		{"plain hooks", open, spec("", hook("post_switch", "/usr/local/bin/smoke", "{{port}}"), hook("drain", "{{slot_dir}}/bin/drain")), ""},
		{"unknown name", open, spec("", hook("post_deploy", "/bin/true")), `unknown hook "post_deploy"; a hook is one of pre_switch, post_switch, drain, pre_revert, post_revert`},
		{"twice", open, spec("", hook("drain", "/bin/true"), hook("drain", "/bin/false")), `hook "drain": defined twice`},
		{"empty exec", open, spec("", hook("drain")), `hook "drain": exec: the executable (first element) must not be empty`},
		// exec_start's rule: no systemd prefix character, however quoted.
		{"plus prefix", open, spec("", hook("post_switch", `"+/bin/sh`, "-c", "id")), `starts with "+", which systemd reads as a command prefix`},
		{"relative", open, spec("", hook("post_switch", "sh", "-c", "id")), `must be an absolute path or start with {{slot_dir}}`},
		{"control character", open, spec("", hook("post_switch", "/bin/x", "a\nb")), "control characters"},
		{"unknown placeholder", open, spec("", hook("post_switch", "/bin/x", "{{secret}}")), "unknown placeholder {{secret}}"},
		{"timeout over the cap", open, spec("", &rollwavev1.HookSpec{Name: "drain", Exec: []string{"/bin/true"}, TimeoutMs: 3_600_000}), `hook "drain": timeout 3600000ms`},
		// hook_prefixes: absolute directories, or inside the slot.
		{"inside a prefix", prefixed, spec("", hook("drain", "/usr/local/lib/rollwave-hooks/drain"), hook("post_switch", "{{slot_dir}}/hooks/smoke")), ""},
		{"outside the prefixes", prefixed, spec("", hook("post_switch", "/bin/sh", "-c", "id")), `executable "/bin/sh" is outside this host's hook directories (policy.hook_prefixes`},
		{"dot segments out of a prefix", prefixed, spec("", hook("post_switch", "/usr/local/lib/rollwave-hooks/../../../bin/sh")), "outside this host's hook directories"},
		{"slot dir outside its prefix", prefixed, spec("", hook("post_switch", "{{slot_dir}}/bin/smoke")), "outside this host's hook directories"},
		// Hooks run as unit.user: a root unit is refused where root is.
		{"root hooks refused with root", Policy{}, spec("", hook("drain", "/bin/true")), "would run as root"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkPolicy(t, tc.p, tc.spec, tc.want) })
	}
}
