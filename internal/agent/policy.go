package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rollwave/rollwave/internal/spec"
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
	prefixes, err := spec.ParseArtifactPrefixes(p.ArtifactPrefixes)
	if err != nil {
		return fmt.Errorf("policy.%w", err)
	}
	return prefixes.Check(rawURL)
}

// Check returns why the order is refused, or nil.
func (p Policy) Check(spec *rollwavev1.ReleaseSpec) error {
	if err := p.CheckArtifactURL(spec.GetArtifact().GetUrl()); err != nil {
		return err
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
