package systemd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// Environment variables every slot gets; a unit may not set them itself.
const (
	EnvSlot = "ROLLWAVE_SLOT"
	EnvPort = "ROLLWAVE_PORT"
)

// DefaultRestart is the Restart= policy of a unit that does not set one.
const DefaultRestart = "on-failure"

var (
	// appName keeps unit names valid and file names inside UnitDir.
	appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	// userName accepts POSIX-ish user names and numeric UIDs; anything
	// else systemd would reject at load time, when it is too late to say
	// which release was wrong.
	userName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)
	envKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// restartPolicies are systemd's Restart= values.
	restartPolicies = []string{"no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"}
)

// unitName validates app and s and returns the slot's unit name.
func unitName(app string, s slot.Name) (string, error) {
	if !appName.MatchString(app) {
		return "", fmt.Errorf("app %q: must start with a letter or digit and contain only letters, digits, '_', '.' and '-'", app)
	}
	if !s.Valid() {
		return "", fmt.Errorf("slot %q: must be %q or %q", s, slot.Blue, slot.Green)
	}
	name := slot.UnitName(app, s)
	if len(name) > 255 {
		return "", fmt.Errorf("app %q: unit name %s is longer than systemd's 255 characters", app, name)
	}
	return name, nil
}

// Render returns the unit file for u. It is pure and deterministic: equal
// inputs give byte-identical output, which is what lets Install skip
// unchanged units (and so skip daemon-reloads). hardening is appended to
// [Service] verbatim; it is assumed valid (Config.Validate checks it).
//
// Errors name the offending field. Values with newlines or NUL bytes are
// rejected rather than escaped: a newline would start a new setting.
func Render(u slot.Unit, hardening Hardening) ([]byte, error) {
	if err := validateUnit(u); err != nil {
		return nil, fmt.Errorf("render unit for %s/%s: %w", u.App, u.Slot, err)
	}
	if err := Hardening(u.Hardening).Validate(); err != nil {
		return nil, fmt.Errorf("render unit for %s/%s: unit hardening: %w", u.App, u.Slot, err)
	}
	hardening = mergeHardening(hardening, u.Hardening)
	wd := u.WorkingDirectory
	if wd == "" {
		wd = u.Dir
	}
	restart := u.Restart
	if restart == "" {
		restart = DefaultRestart
	}

	var b bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by rollwave; the agent rewrites this file, do not edit.")
	line("[Unit]")
	line("Description=%s", escapeSpecifiers(fmt.Sprintf("rollwave %s %s slot (version %s)", u.App, u.Slot, u.Version)))
	line("")
	line("[Service]")
	line("Type=simple")
	for _, pre := range u.ExecStartPre {
		line("ExecStartPre=%s", quoteCommand(pre))
	}
	line("ExecStart=%s", quoteCommand(u.ExecStart))
	if u.User != "" {
		line("User=%s", u.User)
	}
	line("WorkingDirectory=%s", escapeSpecifiers(wd))
	keys := make([]string, 0, len(u.Environment))
	for k := range u.Environment {
		if k != EnvSlot && k != EnvPort {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		line("Environment=%s", quoteEnv(k, u.Environment[k]))
	}
	line("Environment=%s %s", quoteEnv(EnvSlot, string(u.Slot)), quoteEnv(EnvPort, strconv.Itoa(u.Port)))
	line("Restart=%s", restart)
	line("RestartSec=1")
	for _, h := range hardening {
		line("%s", h)
	}
	line("")
	// Slots are never enabled (the agent decides what runs after a boot);
	// the section only makes "systemctl enable" meaningful for an operator
	// doing something by hand.
	line("[Install]")
	line("WantedBy=multi-user.target")
	return b.Bytes(), nil
}

// validateUnit checks every field Render writes.
func validateUnit(u slot.Unit) error {
	if _, err := unitName(u.App, u.Slot); err != nil {
		return err
	}
	if err := checkPrintable("Version", u.Version); err != nil {
		return err
	}
	if u.Port < 1 || u.Port > 65535 {
		return fmt.Errorf("Port %d: must be 1-65535", u.Port)
	}
	if err := checkPath("Dir", u.Dir); err != nil {
		return err
	}
	if u.WorkingDirectory != "" {
		if err := checkPath("WorkingDirectory", u.WorkingDirectory); err != nil {
			return err
		}
	}
	if err := checkCommand("ExecStart", u.ExecStart); err != nil {
		return err
	}
	for i, pre := range u.ExecStartPre {
		if err := checkCommand(fmt.Sprintf("ExecStartPre[%d]", i), pre); err != nil {
			return err
		}
	}
	if u.User != "" && !userName.MatchString(u.User) {
		return fmt.Errorf("User %q: not a valid user name or UID", u.User)
	}
	for k, v := range u.Environment {
		if !envKey.MatchString(k) {
			return fmt.Errorf("Environment key %q: must match [A-Za-z_][A-Za-z0-9_]*", k)
		}
		// The driver writes these itself; the same value from the unit
		// (slot.RenderUnit sets them for every driver) is fine, another
		// value would contradict the slot.
		if (k == EnvSlot && v != string(u.Slot)) || (k == EnvPort && v != strconv.Itoa(u.Port)) {
			return fmt.Errorf("Environment key %s is reserved: rollwave sets it to the slot's own value", k)
		}
		if err := checkValue("Environment["+k+"]", v); err != nil {
			return err
		}
	}
	if u.Restart != "" && !slices.Contains(restartPolicies, u.Restart) {
		return fmt.Errorf("Restart %q: must be one of %s", u.Restart, strings.Join(restartPolicies, ", "))
	}
	return nil
}

// checkCommand validates an argv: non-empty, with a non-empty executable
// that does not start with a systemd command prefix, and every argument
// single-line.
func checkCommand(field string, argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("%s: no command", field)
	}
	if strings.ContainsRune(execPrefixes, rune(argv[0][0])) {
		// systemd strips the quotes Render would add and then reads the
		// prefix: "+" and "!" would run the command as root, unsandboxed.
		return fmt.Errorf("%s: executable %q starts with %q, which systemd reads as a command prefix", field, argv[0], argv[0][:1])
	}
	for i, a := range argv {
		if err := checkValue(fmt.Sprintf("%s[%d]", field, i), a); err != nil {
			return err
		}
	}
	return nil
}

// checkPath validates a directory written verbatim: systemd wants it
// absolute and normalised, and trims surrounding whitespace and joins a
// line ending in a backslash with the next, so those are refused too.
func checkPath(field, p string) error {
	if err := checkPrintable(field, p); err != nil {
		return err
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%s %q: must be a clean absolute path", field, p)
	}
	if strings.TrimSpace(p) != p || strings.HasSuffix(p, `\`) {
		return fmt.Errorf("%s %q: must not end in whitespace or a backslash", field, p)
	}
	return nil
}

// checkPrintable is checkValue plus no control characters at all, for
// values written verbatim (without quoting, so without escapes).
func checkPrintable(field, v string) error {
	if err := checkValue(field, v); err != nil {
		return err
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("%s %q contains a control character at byte %d", field, v, i)
	}
	return nil
}

// mergeHardening returns the host's lines with every key the unit sets
// replaced by the unit's line (the agent's policy decided it may).
func mergeHardening(host Hardening, unit []string) Hardening {
	if len(unit) == 0 {
		return host
	}
	set := map[string]bool{}
	for _, l := range unit {
		k, _, _ := strings.Cut(l, "=")
		set[k] = true
	}
	var out Hardening
	for _, l := range host {
		if k, _, _ := strings.Cut(l, "="); !set[k] {
			out = append(out, l)
		}
	}
	return append(out, unit...)
}
