package spec

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// MaxRequires bounds the requires blocks of one release.
const MaxRequires = 16

// requiresBlock decodes one requires { app = ... version = ... } block.
func requiresBlock(dst *[]Requirement) speccore.BlockFunc {
	return func(d *speccore.Decoder, b *hcl.Block, path string) {
		var r Requirement
		d.Body(b.Body, path, b.DefRange, []speccore.Field{
			speccore.Attr("app", speccore.Str(&r.App)),
			speccore.Attr("version", speccore.Str(&r.Version)),
		})
		*dst = append(*dst, r)
	}
}

// ParseConstraint parses a requires version constraint
// (github.com/Masterminds/semver/v3 syntax: ">= 2.3", "~2.3", "^2, != 2.4.1").
func ParseConstraint(s string) (*semver.Constraints, error) {
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a semantic version constraint (%v); write e.g. \">= 2.3\" or \"^2.3, != 2.4.1\"", s, err)
	}
	return c, nil
}

func validateRequires(ps *speccore.Problems, app string, rs []Requirement) {
	if len(rs) > MaxRequires {
		ps.Add("release.requires", "at most %d requires blocks, got %d", MaxRequires, len(rs))
	}
	seen := map[string]int{}
	for i, r := range rs {
		p := speccore.Index("release.requires", i)
		switch {
		case r.App == "":
			ps.Missing(p, "app")
		case !appRE.MatchString(r.App):
			ps.Add(p+".app", "must be an app name (1-63 letters, digits, '.', '_' or '-'), got %q", r.App)
		case r.App == app:
			ps.Add(p+".app", "a release cannot require its own app %q", r.App)
		default:
			if j, dup := seen[r.App]; dup {
				ps.Add(p+".app", "app %q is already required by requires block %d; put both constraints in one version string (\">= 2.3, < 3\")", r.App, j)
			}
			seen[r.App] = i
		}
		if r.Version == "" {
			ps.Missing(p, "version")
		} else if _, err := ParseConstraint(r.Version); err != nil {
			ps.Add(p+".version", "%v", err)
		}
	}
}
