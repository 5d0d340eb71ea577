package systemd

import (
	"fmt"
	"strconv"
	"strings"
)

// This file is a test-only model of how systemd reads a setting back:
// extract_first_word(UNQUOTE|CUNESCAPE) word splitting, then specifier
// ("%%") and, for Exec lines, variable ("$$") unescaping. It is written
// from systemd's rules, not from quote.go, so round-trip tests compare the
// renderer against an independent reading.

// splitWords splits a setting value into words as systemd does. bare[i]
// reports whether word i was written without quotes or escapes.
func splitWords(s string) (words []string, bare []bool, err error) {
	i := 0
	for {
		for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
			i++
		}
		if i == len(s) {
			return words, bare, nil
		}
		var w strings.Builder
		quote := byte(0)
		plain := true
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\':
				n, r, err := unescapeOne(s[i+1:])
				if err != nil {
					return nil, nil, err
				}
				w.WriteString(r)
				i += n
				plain = false
			case quote != 0 && c == quote:
				quote = 0
			case quote != 0:
				w.WriteByte(c)
			case c == '"' || c == '\'':
				quote = c
				plain = false
			case strings.IndexByte(" \t\r\n", c) >= 0:
				goto end
			default:
				w.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, nil, fmt.Errorf("unterminated quote in %q", s)
		}
	end:
		words = append(words, w.String())
		bare = append(bare, plain)
	}
}

// unescapeOne decodes the escape after a backslash, returning how many
// bytes it used.
func unescapeOne(s string) (int, string, error) {
	if s == "" {
		return 0, "", fmt.Errorf("trailing backslash")
	}
	switch s[0] {
	case '\\', '"', '\'', ' ':
		return 1, s[:1], nil
	case 't':
		return 1, "\t", nil
	case 'r':
		return 1, "\r", nil
	case 'n':
		return 1, "\n", nil
	case 'x':
		if len(s) < 3 {
			return 0, "", fmt.Errorf("short \\x escape")
		}
		v, err := strconv.ParseUint(s[1:3], 16, 8)
		if err != nil {
			return 0, "", err
		}
		return 3, string([]byte{byte(v)}), nil
	}
	return 0, "", fmt.Errorf("unknown escape \\%c", s[0])
}

// unescapeExpansion undoes "%%" (always) and "$$" (if dollar), failing
// on a lone "%" or "$", which systemd would expand.
func unescapeExpansion(w string, dollar bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c == '%' || (dollar && c == '$') {
			if i+1 >= len(w) || w[i+1] != c {
				return "", fmt.Errorf("unescaped %c in %q would be expanded", c, w)
			}
			i++
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// parseCommand reads an Exec*= value back into argv.
func parseCommand(v string) ([]string, error) {
	if v != "" && strings.IndexByte(execPrefixes, v[0]) >= 0 {
		return nil, fmt.Errorf("command %q starts with an Exec prefix", v)
	}
	words, bare, err := splitWords(v)
	if err != nil {
		return nil, err
	}
	for i, w := range words {
		if w == ";" && bare[i] {
			return nil, fmt.Errorf("bare ';' separates commands")
		}
		if words[i], err = unescapeExpansion(w, true); err != nil {
			return nil, err
		}
	}
	return words, nil
}
