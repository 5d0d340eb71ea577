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
		return &rollwavev1.ReleaseSpec{Artifact: &rollwavev1.Artifact{Url: url}, Unit: &rollwavev1.UnitSpec{User: user}}
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
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestSecurityArtifactPrefixPolicy (issue 11 item 4): the host's
// artifact_prefixes were compared as strings, so these escapes were
// accepted and fetched. The agent checks them itself, whatever the
// coordinator validated.
func TestSecurityArtifactPrefixPolicy(t *testing.T) {
	p := Policy{AllowRoot: true, ArtifactPrefixes: []string{"https://a.example/builds/", "file:///srv/releases/"}}
	spec := func(url string) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Artifact: &rollwavev1.Artifact{Url: url}, Unit: &rollwavev1.UnitSpec{}}
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
