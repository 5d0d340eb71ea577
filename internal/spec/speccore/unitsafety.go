package speccore

import (
	"fmt"
	"strconv"
	"strings"
)

// This file holds the checks on what a release writes into a slot's
// systemd unit. Spec validation (coordinator side) and the agent's local
// policy both call them, so a release the coordinator accepts is one the
// agent accepts too, and an order forged past the coordinator is refused
// by the same rules on the host.

// ExecPrefixChars are the characters systemd reads as command prefixes at
// the start of an Exec*= line's first word: "-" (ignore failure), "@"
// (next word is argv[0]), ":" (no variable expansion), "+" and "!"/"!!"
// (run with full privileges, ignoring User= and the sandbox), "|" (run
// through the user's shell, systemd ≥ 257). systemd strips quotes before
// it looks for them, so quoting the word does not help: a command whose
// first word starts with one is refused.
const ExecPrefixChars = "-@:+!|"

// ServiceKeysRendered are the [Service] settings rollwave writes itself;
// a hardening line may not set them (for list settings such as
// ExecStartPre= a repeat would add a command rather than replace one).
var ServiceKeysRendered = []string{"Type", "ExecStart", "ExecStartPre", "User", "WorkingDirectory", "Environment", "Restart", "RestartSec"}

// CheckExecCommand returns why cmd, a command line as written in a spec
// (unit.exec_start, unit.exec_start_pre), cannot be rendered into a
// systemd Exec*= line as an unprivileged command, or nil. It refuses
// control characters (a newline would start a new directive) and a first
// word starting with a systemd command prefix, looked for after leading
// blanks, quotes and backslashes, which the command splitter and systemd
// both remove.
func CheckExecCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("must not be empty")
	}
	if err := CheckUnitValue(cmd); err != nil {
		return err
	}
	first := strings.TrimLeft(cmd, " \t\"'\\")
	if first != "" && strings.ContainsRune(ExecPrefixChars, rune(first[0])) {
		return fmt.Errorf("starts with %q, which systemd reads as a command prefix (one of %s; \"+\" and \"!\" run the command as root, outside the sandbox), got %q; start the command with the executable's path",
			first[:1], strings.Join(strings.Split(ExecPrefixChars, ""), " "), cmd)
	}
	return nil
}

// CheckExecArgv is CheckExecCommand for a command already split into
// words (after placeholders expanded): the executable must be non-empty
// and must not start with a systemd command prefix; no word may hold a
// control character.
func CheckExecArgv(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("no command")
	}
	for _, a := range argv {
		if err := CheckUnitValue(a); err != nil {
			return err
		}
	}
	if strings.ContainsRune(ExecPrefixChars, rune(argv[0][0])) {
		return fmt.Errorf("executable %q starts with %q, which systemd reads as a command prefix (\"+\" and \"!\" run it as root, outside the sandbox)", argv[0], argv[0][:1])
	}
	return nil
}

// CheckUnitValue returns why s cannot be written into a unit file line,
// or nil: control characters (a newline would inject directives, a NUL
// truncates the line) are refused.
func CheckUnitValue(s string) error {
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("must not contain control characters such as newlines, got %q", s)
	}
	return nil
}

// CheckUnitUser returns why u is not a valid User= value, or nil. Empty is
// valid (the unit runs as root; policy decides whether that is allowed).
// A numeric id must be written without leading zeros: systemd reads "00"
// as a user name, other tools as uid 0, and the two must not disagree
// about who the unit runs as.
func CheckUnitUser(u string) error {
	if u == "" {
		return nil
	}
	if !UserRE.MatchString(u) {
		return fmt.Errorf("must be a user name or numeric id (letters, digits, '_', '.', '-', at most 32), got %q", u)
	}
	if isDigits(u) {
		if len(u) > 1 && u[0] == '0' {
			plain := strings.TrimLeft(u, "0")
			if plain == "" {
				plain = "0"
			}
			return fmt.Errorf("numeric user id %q has leading zeros; write it as %q", u, plain)
		}
		if n, err := strconv.ParseUint(u, 10, 32); err != nil || n == 1<<32-1 {
			return fmt.Errorf("numeric user id %q is out of range (0-4294967294)", u)
		}
	}
	return nil
}

// IsRootUser reports whether a unit with User=u runs as root: no user,
// "root", or a numeric id equal to 0 however written ("0", "00").
func IsRootUser(u string) bool {
	if u == "" || u == "root" {
		return true
	}
	return isDigits(u) && strings.TrimLeft(u, "0") == ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// HardeningKey returns a hardening line's setting name ("ProtectSystem"
// for "ProtectSystem=strict").
func HardeningKey(line string) string {
	k, _, _ := strings.Cut(line, "=")
	return k
}

// CheckHardeningLine returns why line is not a sandboxing setting a
// release may add to its unit's [Service] section, or nil: it must be one
// "Key=value" line, must not end in a backslash (systemd would join the
// next line onto it), must not set what rollwave renders itself, and must
// not add a command (Exec*= settings run programs).
func CheckHardeningLine(line string) error {
	key, _, ok := strings.Cut(line, "=")
	if !ok || !hardeningKey.MatchString(key) {
		return fmt.Errorf(`must be a systemd setting "Key=value" such as "ProtectSystem=strict", got %q`, line)
	}
	if err := CheckUnitValue(line); err != nil {
		return err
	}
	if strings.HasSuffix(line, `\`) {
		return fmt.Errorf("ends in a backslash, which systemd reads as a line continuation into the next directive, got %q", line)
	}
	for _, k := range ServiceKeysRendered {
		if key == k {
			return fmt.Errorf("sets %s=, which rollwave renders itself, got %q", key, line)
		}
	}
	if strings.HasPrefix(key, "Exec") {
		return fmt.Errorf("sets %s=, which runs a command; hardening lines may only change sandboxing, got %q", key, line)
	}
	return nil
}
