package cli

import (
	"slices"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	cases := []struct {
		name     string
		in, want []string
	}{
		// A global long flag before the command.
		{"global", []string{"-address", "h:1", "members"}, []string{"--address", "h:1", "members"}},
		// The = form.
		{"equals", []string{"-address=h:1", "members"}, []string{"--address=h:1", "members"}},
		// Global and local flags after the command path.
		{"after command", []string{"release", "list", "-app", "api", "-json", "-timeout", "3s"},
			[]string{"release", "list", "--app", "api", "--json", "--timeout", "3s"}},
		// The value of a flag is never rewritten, even when it looks like one.
		{"value looks like flag", []string{"release", "pause", "r1", "-reason", "-json"},
			[]string{"release", "pause", "r1", "--reason", "-json"}},
		// A local flag of another command is not known here: left to pflag.
		{"unknown here", []string{"members", "-app", "x"}, []string{"members", "-app", "x"}},
		// Shorthands stay shorthands.
		{"shorthand", []string{"-h"}, []string{"-h"}},
		{"help", []string{"release", "-help"}, []string{"release", "--help"}},
		{"version", []string{"-version"}, []string{"--version"}},
		// Double dash is left alone, and so is everything after "--".
		{"double dash", []string{"--address", "h:1", "members", "--", "-json"}, []string{"--address", "h:1", "members", "--", "-json"}},
		// Negative numbers are values, not flags.
		{"negative value", []string{"cells", "set", "c", "-risk", "-1"}, []string{"cells", "set", "c", "--risk", "-1"}},
		// A positional that names a command elsewhere does not change the path.
		{"positional", []string{"release", "get", "status", "-json"}, []string{"release", "get", "status", "--json"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := normalizeArgs(NewRootCommand("test"), tc.in)
			if !slices.Equal(got, tc.want) {
				t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
