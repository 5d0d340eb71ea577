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
