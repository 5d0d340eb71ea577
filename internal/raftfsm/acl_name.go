package raftfsm

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxACLTokenNameChars bounds an ACL token's name: it is the actor
// recorded with every write the token makes and is printed in listings,
// events and logs.
const MaxACLTokenNameChars = 128

// CheckACLTokenName returns why name cannot name an ACL token, or nil: it
// must be 1 to MaxACLTokenNameChars printable characters (letters, marks,
// digits, punctuation, symbols and the ASCII space), valid UTF-8, without
// leading or trailing spaces. Control characters (a newline or an escape
// sequence would forge log lines and terminal output) and invisible
// formatting characters (bidirectional overrides) are refused.
//
// The servers check names before proposing a token; Apply does not, so log
// entries written before this check replay as they did (a replica must
// never reject what its peers accepted).
func CheckACLTokenName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return fmt.Errorf("a token needs a name (it is recorded as the actor of what the token does)")
	case !utf8.ValidString(name):
		return fmt.Errorf("token name %q is not valid UTF-8", name)
	case n > MaxACLTokenNameChars:
		return fmt.Errorf("token name is %d characters long, at most %d", n, MaxACLTokenNameChars)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("token name %q holds the non-printable character %U; use letters, digits, punctuation and spaces", name, r)
		}
	}
	if first, _ := utf8.DecodeRuneInString(name); first == ' ' {
		return fmt.Errorf("token name %q starts with a space", name)
	}
	if last, _ := utf8.DecodeLastRuneInString(name); last == ' ' {
		return fmt.Errorf("token name %q ends with a space", name)
	}
	return nil
}
