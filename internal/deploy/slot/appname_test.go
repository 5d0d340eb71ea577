package slot

import (
	"strings"
	"testing"
)

// App names are 1-64 of [A-Za-z0-9._-], starting with a letter or digit; the
// length is checked apart from the pattern (see appNameRE).
func TestValidAppName(t *testing.T) {
	for _, c := range []struct {
		app string
		ok  bool
	}{
		{"web", true},
		{"a", true},
		{"web-1.2_x", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".web", false},
		{"-web", false},
		{"we/b", false},
		{"wéb", false},
		{"web\n", false},
	} {
		if err := validApp(c.app); (err == nil) != c.ok {
			t.Errorf("validApp(%q) = %v, want ok=%v", c.app, err, c.ok)
		}
	}
}
