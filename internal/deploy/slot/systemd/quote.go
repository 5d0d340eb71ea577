package systemd

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// This file renders values in the syntax systemd's unit file parser reads
// back unchanged. Two layers apply to a command-line argument:
//
//  1. Word splitting (extract_first_word with UNQUOTE|CUNESCAPE): words are
//     separated by whitespace, '…' and "…" group, and C escapes (\\, \", \t,
//     \xNN) are decoded inside and outside quotes.
//  2. Expansion after splitting: specifiers ("%n", "%i", …; "%%" is a
//     literal "%") in every setting that supports them, and, in Exec*= lines
//     only, environment variables ("$FOO", "${FOO}"; "$$" is a literal "$").
//
// An argument that contains only "safe" bytes is written bare; anything
// else is written in double quotes with escapes. Either way "%" becomes
// "%%" and, for Exec lines, "$" becomes "$$".

// checkValue rejects what no unit file line can carry: a newline would end
// the setting (and could inject new ones), NUL truncates it in C, and
// invalid UTF-8 is refused by systemd's parser.
func checkValue(field, v string) error {
	if i := strings.IndexAny(v, "\n\x00"); i >= 0 {
		what := "a newline"
		if v[i] == 0 {
			what = "a NUL byte"
		}
		return fmt.Errorf("%s contains %s at byte %d: unit file values must be single-line text", field, what, i)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8: %q", field, v)
	}
	return nil
}

// isSafeByte reports whether b can appear in an unquoted word with no
// meaning to the splitter. '%' and '$' are safe here because they are
// doubled separately.
func isSafeByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("/._-+=:,@%$", b) >= 0
}

// execPrefixes are the characters that, at the very start of an Exec*=
// line, change how systemd runs the command ("-" ignore failure, "@" argv0,
// ":" no expansion, "+"/"!" privileges, "|" shell). systemd unquotes the
// first word before it looks for them, so quoting does not keep them
// literal: checkCommand refuses an executable starting with one. The
// quoting below stays as a second guard for older parsers.
const execPrefixes = slot.ExecPrefixes

// quoteWord renders one word. expandDollar is true for Exec*= arguments,
// where "$" must be doubled; first is true for the executable, which must
// not be mistaken for a prefix.
func quoteWord(s string, expandDollar, first bool) string {
	bare := s != ""
	for i := 0; i < len(s) && bare; i++ {
		bare = isSafeByte(s[i])
	}
	if bare && first && strings.IndexByte(execPrefixes, s[0]) >= 0 {
		bare = false
	}
	var b strings.Builder
	if !bare {
		b.WriteByte('"')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			b.WriteString("%%")
		case c == '$' && expandDollar:
			b.WriteString("$$")
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			// Other control bytes (e.g. \r) would be taken as whitespace
			// or stripped at the end of a line; \xNN survives both.
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	if !bare {
		b.WriteByte('"')
	}
	return b.String()
}

// quoteCommand renders an Exec*= value from its arguments.
func quoteCommand(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = quoteWord(a, true, i == 0)
	}
	return strings.Join(words, " ")
}

// quoteEnv renders one KEY=value word for Environment=, where "$" is
// literal (no expansion) but specifiers still apply.
func quoteEnv(key, value string) string {
	return quoteWord(key+"="+value, false, false)
}

// escapeSpecifiers doubles "%" for settings taken verbatim (no word
// splitting) but still subject to specifier expansion: Description=,
// User=, WorkingDirectory=.
func escapeSpecifiers(s string) string {
	return strings.ReplaceAll(s, "%", "%%")
}
