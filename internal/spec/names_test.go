package spec

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// Each bounded name rule accepts exactly what the counted-repetition
// pattern it replaced accepted: same classes, same length bound, no
// non-ASCII slipping through on a byte count.
func TestBoundedNamesMatchTheCountedPatterns(t *testing.T) {
	cases := []struct {
		name string
		rule speccore.NameRule
		old  string
	}{
		{"nodeNameRE", speccore.NodeNameRE, `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`},
		{"credentialFileName", credentialFileName, `^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$`},
		{"nameRE", nameRE, `^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$`},
		{"appRE", appRE, `^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`},
		{"userRE", speccore.UserRE, `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`},
	}
	// Characters from every class above, plus ones none accepts.
	const alphabet = "aZ09._-+~/ é\x00\n$"
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		old := regexp.MustCompile(c.old)
		check := func(s string) {
			t.Helper()
			if got, want := c.rule.MatchString(s), old.MatchString(s); got != want {
				t.Fatalf("%s: %q (%d bytes): got %v, the counted pattern says %v", c.name, s, len(s), got, want)
			}
		}
		accepted := 0
		for n := 0; n <= c.rule.MaxLen()+2; n++ {
			// At and around the bound: all-valid names of every length.
			check(strings.Repeat("a", n))
			check("a" + strings.Repeat(".", n))
			check(strings.Repeat("é", n)) // 2 bytes a character
			for range 20 {
				b := make([]rune, n)
				for i := range b {
					b[i] = []rune(alphabet)[rng.IntN(len([]rune(alphabet)))]
				}
				check(string(b))
				if old.MatchString(string(b)) {
					accepted++
				}
			}
		}
		if accepted == 0 {
			t.Errorf("%s: no random name was accepted; the comparison tested only rejections", c.name)
		}
	}
}
