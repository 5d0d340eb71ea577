package speccore

import "regexp"

// NameRule is an anchored, ASCII-only character-class pattern plus a length
// bound: the names specs and configs accept (release, app, node, user,
// credential file).
//
// The bound is not written as a counted repetition ({0,127}) because regexp
// compiles one copy of the class per count: the five bounded patterns of
// this package held ~200 KB of compiled program (and cost ~550 KB of
// allocation) in every process that imports it, from init to exit, the
// agent included. The unbounded pattern with a length check accepts
// exactly the same strings (every class is ASCII, so bytes are characters)
// for ~1 KB each (names_test.go checks the two against each other).
type NameRule struct {
	re  *regexp.Regexp
	max int // bytes
}

// BoundedName is a name rule: pattern (unbounded) and at most max bytes.
func BoundedName(pattern string, max int) NameRule {
	return NameRule{re: regexp.MustCompile(pattern), max: max}
}

// MaxLen is the longest name, in bytes, the rule accepts.
func (n NameRule) MaxLen() int { return n.max }

// MatchString reports whether s is 1..max bytes and matches the pattern.
func (n NameRule) MatchString(s string) bool {
	return len(s) <= n.max && n.re.MatchString(s)
}
