package agent

import (
	"fmt"
	"slices"
	"strings"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Policy is what this host accepts from any coordinator, whoever holds the
// certificates: a last line of defence owned by the host's operators. An
// assignment outside it is refused with the reason and reported as
// FAILED; the serving slot is not touched.
type Policy struct {
	// ArtifactPrefixes, when non-empty, are the only URL prefixes artifacts
	// may come from ("https://artifacts.internal/", "file:///srv/releases/").
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
}

// Check returns why the order is refused, or nil.
func (p Policy) Check(spec *rollwavev1.ReleaseSpec) error {
	url := spec.GetArtifact().GetUrl()
	if len(p.ArtifactPrefixes) > 0 && !slices.ContainsFunc(p.ArtifactPrefixes, func(pre string) bool { return strings.HasPrefix(url, pre) }) {
		return fmt.Errorf("artifact URL %q is not under an allowed prefix (%s)", url, strings.Join(p.ArtifactPrefixes, ", "))
	}
	user := spec.GetUnit().GetUser()
	if (user == "" || user == "root" || user == "0") && !p.AllowRoot {
		if user == "" {
			return fmt.Errorf("unit.user is empty, so the unit would run as root; this host does not allow root units")
		}
		return fmt.Errorf("unit.user %q is root; this host does not allow root units", user)
	}
	if user != "" && user != "root" && len(p.UnitUsers) > 0 && !slices.Contains(p.UnitUsers, user) {
		return fmt.Errorf("unit.user %q is not an allowed unit user (%s)", user, strings.Join(p.UnitUsers, ", "))
	}
	for _, h := range spec.GetUnit().GetHardening() {
		key, _, _ := strings.Cut(h, "=")
		if !slices.Contains(p.SpecHardeningKeys, key) {
			return fmt.Errorf("unit.hardening sets %s, which this host's policy does not let releases change (policy.spec_hardening_keys)", key)
		}
	}
	return nil
}
