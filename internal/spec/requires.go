package spec

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
)

// MaxRequires bounds the requires blocks of one release.
const MaxRequires = 16

// requiresBlock decodes one requires { app = ... version = ... } block.
func requiresBlock(dst *[]Requirement) blockFunc {
	return func(d *decoder, b *hcl.Block, path string) {
		var r Requirement
		d.body(b.Body, path, b.DefRange, []field{
			attr("app", str(&r.App)),
			attr("version", str(&r.Version)),
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

func validateRequires(ps *problems, app string, rs []Requirement) {
	if len(rs) > MaxRequires {
		ps.add("release.requires", "at most %d requires blocks, got %d", MaxRequires, len(rs))
	}
	seen := map[string]int{}
	for i, r := range rs {
		p := index("release.requires", i)
		switch {
		case r.App == "":
			ps.missing(p, "app")
		case !appRE.MatchString(r.App):
			ps.add(p+".app", "must be an app name (1-63 letters, digits, '.', '_' or '-'), got %q", r.App)
		case r.App == app:
			ps.add(p+".app", "a release cannot require its own app %q", r.App)
		default:
			if j, dup := seen[r.App]; dup {
				ps.add(p+".app", "app %q is already required by requires block %d; put both constraints in one version string (\">= 2.3, < 3\")", r.App, j)
			}
			seen[r.App] = i
		}
		if r.Version == "" {
			ps.missing(p, "version")
		} else if _, err := ParseConstraint(r.Version); err != nil {
			ps.add(p+".version", "%v", err)
		}
	}
}
