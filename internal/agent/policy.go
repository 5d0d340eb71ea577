package agent

import (
	"fmt"
	"maps"
	"os/user"
	"slices"
	"strings"

	rollwavespec "github.com/rollwave/rollwave/internal/spec/speccore"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Policy is what this host accepts from any coordinator, whoever holds the
// certificates: a last line of defence owned by the host's operators. An
// assignment outside it is refused with the reason and reported as
// FAILED; the serving slot is not touched.
type Policy struct {
	// ArtifactPrefixes, when non-empty, are the only places artifacts may
	// come from ("https://artifacts.internal/builds/", "file:///srv/releases/"):
	// scheme, host and port must match and the path must lie inside the
	// prefix's directory (spec.ArtifactPrefix). Every redirect hop of a
	// download is checked too.
	ArtifactPrefixes []string
	// UnitUsers, when non-empty, are the only users slot units may run as.
	UnitUsers []string
	// AllowRoot permits units without a user (they run as root under
	// systemd) or with user "root".
	AllowRoot bool
	// SpecHardeningKeys are the sandboxing settings a release's
	// unit.hardening may change ("ProtectSystem", "PrivateDevices"); any
	// other key in a spec is refused. Empty: releases change none.
	SpecHardeningKeys []string
	// HookPrefixes, when non-empty, are the only directories lifecycle
	// hooks may run executables from (spec.CheckHookPrefix).
	HookPrefixes []string
}

// CheckArtifactURL returns why an artifact may not be fetched from rawURL
// (the order's URL, or any redirect hop of its download), or nil. With
// artifact prefixes set the URL must also be a well-formed artifact URL
// (no credentials, no dot segments, no file://host); a prefix that does
// not parse refuses everything, so a typo never opens the policy.
func (p Policy) CheckArtifactURL(rawURL string) error {
	if len(p.ArtifactPrefixes) == 0 {
		return nil
	}
	prefixes, err := rollwavespec.ParseArtifactPrefixes(p.ArtifactPrefixes)
	if err != nil {
		return fmt.Errorf("policy.%w", err)
	}
	return prefixes.Check(rawURL)
}

// PolicyFromConfig is the Policy of an agent config file's policy block.
func PolicyFromConfig(c rollwavespec.AgentPolicy) Policy {
	return Policy{ArtifactPrefixes: c.ArtifactPrefixes, UnitUsers: c.UnitUsers, AllowRoot: c.AllowRoot,
		SpecHardeningKeys: c.SpecHardeningKeys, HookPrefixes: c.HookPrefixes}
}

// Check returns why the order is refused, or nil.
func (p Policy) Check(spec *rollwavev1.ReleaseSpec) error {
	if err := p.CheckArtifactURL(spec.GetArtifact().GetUrl()); err != nil {
		return err
	}
	// The same unit checks as spec validation: the agent does not trust
	// that the coordinator ran them (a forged or old coordinator).
	if err := checkUnitSafety(spec.GetUnit()); err != nil {
		return err
	}
	// Hooks run as unit.user: the user checks below cover them too.
	if err := p.checkHooks(spec.GetHooks()); err != nil {
		return err
	}
	user := spec.GetUnit().GetUser()
	if !p.AllowRoot && (rollwavespec.IsRootUser(user) || resolvesToRoot(user)) {
		if user == "" {
			return fmt.Errorf("unit.user is empty, so the unit would run as root; this host does not allow root units")
		}
		return fmt.Errorf("unit.user %q is root; this host does not allow root units", user)
	}
	if !p.AllowRoot {
		// Traffic hooks and exec health checks are run by the agent
		// itself, with its privileges (root), not by the slot's unit.
		if spec.GetTraffic().GetMode() == "exec" {
			return fmt.Errorf("traffic.mode is \"exec\": the agent runs traffic.command as root; this host does not allow root commands (policy.allow_root = false)")
		}
		for _, c := range spec.GetHealth().GetChecks() {
			if c.GetKind() == "exec" {
				return fmt.Errorf("health check %q is an exec check: the agent runs it as root; this host does not allow root commands (policy.allow_root = false)", c.GetName())
			}
		}
	}
	if user != "" && user != "root" && len(p.UnitUsers) > 0 && !slices.Contains(p.UnitUsers, user) {
		return fmt.Errorf("unit.user %q is not an allowed unit user (%s)", user, strings.Join(p.UnitUsers, ", "))
	}
	for _, h := range spec.GetUnit().GetHardening() {
		key := rollwavespec.HardeningKey(h)
		if !slices.Contains(p.SpecHardeningKeys, key) {
			return fmt.Errorf("unit.hardening sets %s, which this host's policy does not let releases change (policy.spec_hardening_keys)", key)
		}
	}
	return nil
}

// checkUnitSafety applies spec validation's unit checks (internal/spec
// unitsafety.go) to an order: no systemd command prefix on any command
// line, no control characters in what is written into the unit, a valid
// User=, hardening lines that are single sandboxing settings.
func checkUnitSafety(u *rollwavev1.UnitSpec) error {
	if err := rollwavespec.CheckExecCommand(u.GetExecStart()); err != nil {
		return fmt.Errorf("unit.exec_start: %w", err)
	}
	for i, c := range u.GetExecStartPre() {
		if err := rollwavespec.CheckExecCommand(c); err != nil {
			return fmt.Errorf("unit.exec_start_pre[%d]: %w", i, err)
		}
	}
	if err := rollwavespec.CheckUnitUser(u.GetUser()); err != nil {
		return fmt.Errorf("unit.user: %w", err)
	}
	if err := rollwavespec.CheckUnitValue(u.GetWorkingDirectory()); err != nil {
		return fmt.Errorf("unit.working_directory: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(u.GetEnvironment())) {
		if err := rollwavespec.CheckUnitValue(u.GetEnvironment()[k]); err != nil {
			return fmt.Errorf("unit.environment.%s: %w", k, err)
		}
	}
	for i, h := range u.GetHardening() {
		if err := rollwavespec.CheckHardeningLine(h); err != nil {
			return fmt.Errorf("unit.hardening[%d]: %w", i, err)
		}
	}
	return nil
}

// checkHooks applies spec validation's hook rules (spec.CheckHookName,
// spec.CheckHookCommand: exec_start's no-prefix-character rule, an
// absolute executable) and the host's hook_prefixes to an order's hooks.
func (p Policy) checkHooks(hooks []*rollwavev1.HookSpec) error {
	seen := map[string]bool{}
	for i, h := range hooks {
		name := h.GetName()
		if err := rollwavespec.CheckHookName(name); err != nil {
			return fmt.Errorf("hook[%d]: %w", i, err)
		}
		if seen[name] {
			return fmt.Errorf("hook %q: defined twice; each hook may be defined once", name)
		}
		seen[name] = true
		if err := rollwavespec.CheckHookCommand(h.GetExec()); err != nil {
			return fmt.Errorf("hook %q: exec: %w", name, err)
		}
		if ms := h.GetTimeoutMs(); ms < 0 || ms > rollwavespec.MaxHookTimeout.Milliseconds() {
			return fmt.Errorf("hook %q: timeout %dms: want 0 (the default, 30s) up to %s", name, ms, rollwavespec.MaxHookTimeout)
		}
		if len(p.HookPrefixes) > 0 {
			exe := h.GetExec()[0]
			if !slices.ContainsFunc(p.HookPrefixes, func(pre string) bool {
				return rollwavespec.CheckHookPrefix(pre) == nil && rollwavespec.HookPrefixAllows(pre, exe)
			}) {
				return fmt.Errorf("hook %q: executable %q is outside this host's hook directories (policy.hook_prefixes: %s)",
					name, exe, strings.Join(p.HookPrefixes, ", "))
			}
		}
	}
	return nil
}

// lookupUID returns the uid of a user name on this host; a variable so
// tests can stand in for /etc/passwd.
var lookupUID = func(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.Uid, nil
}

// resolvesToRoot reports whether the user name exists on this host with
// uid 0 (another name for root, such as "toor"). An unknown user is not
// root here; the unit fails to start later.
func resolvesToRoot(name string) bool {
	if name == "" {
		return false
	}
	uid, err := lookupUID(name)
	return err == nil && uid == "0"
}
