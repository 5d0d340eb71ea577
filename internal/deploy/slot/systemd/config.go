package systemd

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultUnitDir is where unit files are written unless Config.UnitDir says
// otherwise: the administrator's unit directory, which takes precedence
// over units shipped by packages.
const DefaultUnitDir = "/etc/systemd/system"

// Config configures a Driver. Build it with DefaultConfig and change what
// you need; New calls Validate.
type Config struct {
	// UnitDir is the directory unit files are written to. It must be an
	// absolute path in systemd's unit search path. Empty means
	// DefaultUnitDir.
	UnitDir string
	// Logger receives the driver's logs, tagged component=systemd. Nil
	// means slog.Default().
	Logger *slog.Logger
	// Hardening is appended to every unit's [Service] section (sandboxing
	// such as ProtectSystem=strict). May be empty.
	Hardening Hardening
	// Journalctl is the journalctl binary that reads slot logs
	// (`rollwave logs`). Empty means "journalctl" looked up on PATH when
	// a log is read; otherwise a clean absolute path.
	Journalctl string
}

// Hardening is a list of extra [Service] settings, each "Key=value",
// written verbatim (no quoting or escaping is applied: the operator writes
// systemd syntax). Settings the driver renders itself (see ownedKeys) are
// rejected so hardening cannot change what runs.
type Hardening []string

// ownedKeys are the [Service] settings Render writes; Hardening may not
// repeat them (for list settings such as ExecStart= a repeat would append a
// second command rather than replace the first).
var ownedKeys = map[string]bool{
	"Type": true, "ExecStart": true, "ExecStartPre": true, "User": true,
	"WorkingDirectory": true, "Environment": true, "Restart": true,
	"RestartSec": true,
}

var settingKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{UnitDir: DefaultUnitDir, Logger: slog.Default()}
}

// Validate reports the first invalid field, naming it and the bad value.
func (c Config) Validate() error {
	if c.UnitDir != "" && (!filepath.IsAbs(c.UnitDir) || filepath.Clean(c.UnitDir) != c.UnitDir) {
		return fmt.Errorf("systemd config: UnitDir %q must be a clean absolute path", c.UnitDir)
	}
	if c.Journalctl != "" && (!filepath.IsAbs(c.Journalctl) || filepath.Clean(c.Journalctl) != c.Journalctl) {
		return fmt.Errorf("systemd config: Journalctl %q must be a clean absolute path", c.Journalctl)
	}
	return c.Hardening.Validate()
}

// DefaultHardening is the sandboxing every slot unit gets unless the host's
// policy says otherwise: no privilege gain, a private /tmp, /usr /boot /etc
// read-only, kernel tunables, modules and the control groups protected.
// The slot directory (/var/lib/rollwave-agent/apps/...) stays writable.
var DefaultHardening = Hardening{
	"NoNewPrivileges=yes",
	"PrivateTmp=yes",
	"ProtectSystem=full",
	"ProtectKernelTunables=yes",
	"ProtectKernelModules=yes",
	"ProtectControlGroups=yes",
}

// Validate checks that every line is a single "Key=value" setting with a
// key the driver does not own.
func (h Hardening) Validate() error {
	for i, line := range h {
		field := fmt.Sprintf("Hardening[%d]", i)
		if err := checkValue(field, line); err != nil {
			return fmt.Errorf("systemd config: %w", err)
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok || !settingKey.MatchString(key) {
			return fmt.Errorf("systemd config: %s %q is not a Key=value setting", field, line)
		}
		if ownedKeys[key] {
			return fmt.Errorf("systemd config: %s sets %s=, which rollwave renders itself; remove it", field, key)
		}
		if strings.HasSuffix(line, `\`) {
			// A trailing backslash joins the next line onto this one.
			return fmt.Errorf("systemd config: %s %q ends in a backslash (line continuation)", field, line)
		}
	}
	return nil
}

// withDefaults fills empty fields.
func (c Config) withDefaults() Config {
	if c.UnitDir == "" {
		c.UnitDir = DefaultUnitDir
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
