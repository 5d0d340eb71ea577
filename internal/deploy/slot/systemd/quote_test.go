package systemd

import (
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestQuoteWord(t *testing.T) {
	cases := []struct {
		in            string
		dollar, first bool
		want          string
	}{
		// Plain paths and flags need no quotes.
		{"/usr/bin/api", true, true, "/usr/bin/api"},
		{"--listen=127.0.0.1:8081", true, false, "--listen=127.0.0.1:8081"},
		// Empty argument must survive as an (empty) word.
		{"", true, false, `""`},
		// Spaces force quotes.
		{"hello world", true, false, `"hello world"`},
		// Embedded double quote and backslash are escaped inside quotes.
		{`say "hi"`, true, false, `"say \"hi\""`},
		{`C:\dir`, true, false, `"C:\\dir"`},
		// Single quote would open a quoted section: quote the word.
		{"it's", true, false, `"it's"`},
		// "$" is doubled in Exec lines only; "%" always.
		{"$HOME", true, false, "$$HOME"},
		{"$HOME", false, false, "$HOME"},
		{"100%", true, false, "100%%"},
		{"100%", false, false, "100%%"},
		// A lone ";" would separate commands.
		{";", true, false, `";"`},
		// Control characters are escaped so no whitespace or line end eats them.
		{"a\tb", true, false, `"a\tb"`},
		{"a\rb", true, false, `"a\x0db"`},
		// An executable starting with an Exec prefix is quoted, though that
		// does not hide the prefix from systemd (it unquotes first):
		// checkCommand refuses such an executable before anything is
		// written. The same word later in argv stays bare.
		{"-weird", true, true, `"-weird"`},
		{"-v", true, false, "-v"},
		{"@x", true, true, `"@x"`},
		// Non-ASCII is quoted (safe either way, but unambiguous).
		{"héllo", true, false, `"héllo"`},
	}
	for _, c := range cases {
		if got := quoteWord(c.in, c.dollar, c.first); got != c.want {
			t.Errorf("quoteWord(%q, dollar=%v, first=%v) = %s, want %s", c.in, c.dollar, c.first, got, c.want)
		}
	}
}

// TestQuoteCommandRoundTrip checks that any argv without newline/NUL reads
// back identically through the model of systemd's parser.
func TestQuoteCommandRoundTrip(t *testing.T) {
	arg := rapid.StringMatching(`[ -~\t\r\x01é€"'\\$%;]{0,12}`)
	rapid.Check(t, func(t *rapid.T) {
		argv := rapid.SliceOfN(arg, 1, 5).Filter(func(a []string) bool { return a[0] != "" }).Draw(t, "argv")
		line := quoteCommand(argv)
		if strings.ContainsAny(line, "\n\x00") || strings.HasSuffix(line, `\`) {
			t.Fatalf("rendered line %q would break the unit file", line)
		}
		got, err := parseCommand(line)
		if err != nil {
			t.Fatalf("parse %s: %v", line, err)
		}
		if !slices.Equal(got, argv) {
			t.Fatalf("round trip: %q -> %s -> %q", argv, line, got)
		}
	})
}

// TestQuoteEnvRoundTrip does the same for Environment= words, where "$" is
// literal.
func TestQuoteEnvRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.StringMatching(`[ -~\t\r€"'\\$%]{0,16}`).Draw(t, "value")
		word := quoteEnv("KEY", v)
		words, _, err := splitWords(word)
		if err != nil || len(words) != 1 {
			t.Fatalf("split %s: %q, %v", word, words, err)
		}
		got, err := unescapeExpansion(words[0], false)
		if err != nil {
			t.Fatal(err)
		}
		if got != "KEY="+v {
			t.Fatalf("round trip: %q -> %s -> %q", v, word, got)
		}
	})
}
