package agent

import (
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func withHardening(s *rollwavev1.ReleaseSpec, lines ...string) *rollwavev1.ReleaseSpec {
	s.Unit.Hardening = lines
	return s
}

func TestPolicyCheck(t *testing.T) {
	spec := func(url, user string) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Artifact: &rollwavev1.Artifact{Url: url}, Unit: &rollwavev1.UnitSpec{User: user, ExecStart: "{{slot_dir}}/bin/api"}}
	}
	strict := Policy{ArtifactPrefixes: []string{"https://artifacts.internal/"}, UnitUsers: []string{"api"}}
	cases := []struct {
		name string
		p    Policy
		spec *rollwavev1.ReleaseSpec
		want string // "" = allowed
	}{
		{"permissive default allows root", Policy{AllowRoot: true}, spec("http://x/a.tgz", ""), ""},
		{"allowed prefix and user", strict, spec("https://artifacts.internal/api/1.tgz", "api"), ""},
		// A URL elsewhere is refused, naming it and the allowed prefixes.
		{"foreign artifact", strict, spec("https://evil.example/a.tgz", "api"), "not under an allowed prefix"},
		// No user means root under systemd.
		{"empty user is root", strict, spec("https://artifacts.internal/a.tgz", ""), "would run as root"},
		{"explicit root", strict, spec("https://artifacts.internal/a.tgz", "root"), "is root"},
		{"other user", strict, spec("https://artifacts.internal/a.tgz", "www"), `"www" is not an allowed unit user`},
		// A release may change only the sandboxing keys the host allows.
		{"hardening key not allowed", strict, withHardening(spec("https://artifacts.internal/a.tgz", "api"), "ProtectSystem=strict"), "does not let releases change"},
		{"hardening key allowed", Policy{AllowRoot: true, SpecHardeningKeys: []string{"ProtectSystem"}}, withHardening(spec("x", "api"), "ProtectSystem=strict"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkPolicy(t, tc.p, tc.spec, tc.want) })
	}
}

// checkPolicy checks that p allows spec (want "") or refuses it with an
// error containing want.
func checkPolicy(t *testing.T, p Policy, spec *rollwavev1.ReleaseSpec, want string) {
	t.Helper()
	err := p.Check(spec)
	if want == "" {
		if err != nil {
			t.Fatalf("want allowed, got %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want error containing %q, got %v", want, err)
	}
}

// TestSecurityArtifactPrefixPolicy (issue 11 item 4): the host's
// artifact_prefixes were compared as strings, so these escapes were
// accepted and fetched. The agent checks them itself, whatever the
// coordinator validated.
func TestSecurityArtifactPrefixPolicy(t *testing.T) {
	p := Policy{AllowRoot: true, ArtifactPrefixes: []string{"https://a.example/builds/", "file:///srv/releases/"}}
	spec := func(url string) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Artifact: &rollwavev1.Artifact{Url: url}, Unit: &rollwavev1.UnitSpec{ExecStart: "{{slot_dir}}/bin/api"}}
	}
	for _, url := range []string{
		"file:///srv/releases/../../../etc/shadow",
		"file:///srv/releases/%2e%2e/%2e%2e/etc/shadow",
		"https://a.example/builds/../private/x.tgz",
		"https://a.example/builds/..%2f..%2fprivate",
		"https://a.example/builds-evil/x.tgz",
		"https://a.example.evil.com/builds/x.tgz",
		"https://a.example/builds@evil.com/builds/x.tgz",
		"https://user:pw@a.example/builds/x.tgz",
		"file:///srv/releases-old/x.tgz",
	} {
		err := p.Check(spec(url))
		if err == nil {
			t.Errorf("%q: accepted", url)
			continue
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("%q: the refusal shows the credentials: %v", url, err)
		}
	}
	for _, url := range []string{"https://a.example/builds/api/1.0/api.tgz", "file:///srv/releases/api.tgz", "https://A.EXAMPLE:443/builds/x.tgz"} {
		if err := p.Check(spec(url)); err != nil {
			t.Errorf("%q: refused: %v", url, err)
		}
	}
	// A prefix that does not parse refuses everything (fail closed).
	bad := Policy{AllowRoot: true, ArtifactPrefixes: []string{"a.example/builds/"}}
	if err := bad.Check(spec("https://a.example/builds/x.tgz")); err == nil || !strings.Contains(err.Error(), "artifact_prefixes[0]") {
		t.Errorf("unparsable prefix: want a refusal naming artifact_prefixes[0], got %v", err)
	}
}

// TestSecurityAgentPolicyUnitPrefix (issue 11 items 3 and 12): the agent
// does not trust the coordinator's spec validation. An order crafted past
// it (a forged or old coordinator) whose command starts with a systemd
// prefix ("+" runs it as root, outside the sandbox), whose user is "00",
// or whose hardening line continues into the next directive, is refused by
// the host's policy with the field named, even with the permissive
// default policy; with allow_root = false, commands the agent itself runs
// (traffic hooks, exec health checks) and users that are root under
// another name are refused too.
func TestSecurityAgentPolicyUnitPrefix(t *testing.T) {
	order := func(edit func(u *rollwavev1.UnitSpec)) *rollwavev1.ReleaseSpec {
		s := &rollwavev1.ReleaseSpec{App: "api", Version: "1.0.0",
			Artifact: &rollwavev1.Artifact{Url: "https://artifacts.internal/api.tgz"},
			Unit:     &rollwavev1.UnitSpec{ExecStart: "{{slot_dir}}/bin/api", User: "nobody"}}
		edit(s.Unit)
		return s
	}
	strict := Policy{UnitUsers: []string{"nobody", "api", "toor"}}
	permissive := Policy{AllowRoot: true, SpecHardeningKeys: []string{"ProtectSystem"}}
	cases := []struct {
		name string
		p    Policy
		spec *rollwavev1.ReleaseSpec
		want string // "" = allowed
	}{
		{"plain command", strict, order(func(u *rollwavev1.UnitSpec) {}), ""},
		{"+ prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "+/bin/sh -c 'id > /tmp/pwned'" }), "unit.exec_start: starts with \"+\""},
		{"quoted + prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = `"+/bin/sh" -c id` }), "command prefix"},
		{"! prefix after blanks", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "  !!/bin/sh" }), "command prefix"},
		{"@ prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "@/bin/sh sh" }), "command prefix"},
		{"- prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "-/bin/false" }), "command prefix"},
		{": prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = ":/bin/echo" }), "command prefix"},
		{"| prefix", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "|/bin/sh" }), "command prefix"},
		{"prefix in exec_start_pre", strict, order(func(u *rollwavev1.UnitSpec) { u.ExecStartPre = []string{"/bin/true", "+/bin/sh -c id"} }), "unit.exec_start_pre[1]: starts with"},
		// The permissive default policy (allow_root) still refuses: a
		// prefix is not a way to run as root, it is a way around User=.
		{"+ prefix, permissive policy", permissive, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "+/bin/sh" }), "command prefix"},
		{"newline in exec_start", permissive, order(func(u *rollwavev1.UnitSpec) { u.ExecStart = "/bin/true\nExecStartPost=/bin/sh" }), "control characters"},
		{"newline in environment", permissive, order(func(u *rollwavev1.UnitSpec) {
			u.Environment = map[string]string{"A": "1\nExecStartPost=+/bin/sh"}
		}), "unit.environment.A"},
		{"user 00", strict, order(func(u *rollwavev1.UnitSpec) { u.User = "00" }), "leading zeros"},
		{"user 0", strict, order(func(u *rollwavev1.UnitSpec) { u.User = "0" }), "is root"},
		{"user named like root on this host", strict, order(func(u *rollwavev1.UnitSpec) { u.User = "toor" }), "is root"},
		{"hardening continuation", permissive, order(func(u *rollwavev1.UnitSpec) { u.Hardening = []string{`ProtectSystem=strict \`} }), "line continuation"},
		{"exec traffic hook without root", strict, func() *rollwavev1.ReleaseSpec {
			s := order(func(u *rollwavev1.UnitSpec) {})
			s.Traffic = &rollwavev1.TrafficSpec{Mode: "exec", Command: []string{"/bin/sh", "-c", "id"}}
			return s
		}(), "traffic.command as root"},
		{"exec health check without root", strict, func() *rollwavev1.ReleaseSpec {
			s := order(func(u *rollwavev1.UnitSpec) {})
			s.Health = &rollwavev1.HealthSpec{Checks: []*rollwavev1.HealthCheck{{Name: "x", Kind: "exec"}}}
			return s
		}(), "exec check"},
	}
	old := lookupUID
	lookupUID = func(name string) (string, error) {
		if name == "toor" {
			return "0", nil
		}
		return "1000", nil
	}
	t.Cleanup(func() { lookupUID = old })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want refused with %q, got %v", tc.want, err)
			}
		})
	}
}
