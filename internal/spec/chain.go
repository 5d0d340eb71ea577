package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// Chain limits.
const (
	// MaxChainReleases bounds the releases of one chain.
	MaxChainReleases = 10
	// MaxChainGap bounds min_gap.
	MaxChainGap = 30 * 24 * time.Hour
)

// Chain is a validated chain spec: releases that start one after another,
// each once the one before it succeeded on every targeted host and its
// min_gap passed, and that roll back in reverse (a data-format change:
// first the readers of the new format, then its writers).
type Chain struct {
	// Name is the chain block's label.
	Name string
	// Steps are the releases in order.
	Steps []ChainStep
}

// ChainStep is one release of a chain.
type ChainStep struct {
	// Release is the release block, validated as a release spec file's.
	Release *Release
	// After names the release before this one ("" for the first).
	After string
	// MinGap is the least time between the previous release's success
	// and this one's start.
	MinGap time.Duration
}

// ParseChain parses a chain spec: one chain "NAME" block holding 2 to
// MaxChainReleases release "NAME" blocks, each a full release spec plus
// after (every release but the first: the name of the release before it)
// and min_gap. HCL, or JSON when filename ends in ".json". On failure the
// error is a Diagnostics listing every problem; problems inside a release
// name it (field chain.release["NAME"].…).
func ParseChain(filename string, src []byte) (*Chain, error) {
	d := speccore.NewDecoder(filename)
	body := d.Parse(src)
	if body == nil {
		return nil, d.Result()
	}
	var found []*hcl.Block
	d.Body(body, "", d.Start(), []speccore.Field{{
		Name: "chain", Labels: []string{"name"}, Repeated: true,
		Block: func(_ *speccore.Decoder, b *hcl.Block, _ string) { found = append(found, b) },
	}})
	switch len(found) {
	case 0:
		if len(d.Diags) == 0 {
			d.ErrorAt(d.Start(), "", `missing required block chain "NAME" { release "FIRST" { ... } release "SECOND" { after = "FIRST" ... } }`)
		}
		return nil, d.Result()
	case 1:
	default:
		for _, b := range found[1:] {
			d.ErrorAt(b.DefRange, "chain", "duplicate chain block %q; a file holds exactly one chain", b.Labels[0])
		}
	}
	cb := found[0]
	c := &Chain{Name: cb.Labels[0]}
	if !nameRE.MatchString(c.Name) {
		d.ErrorAt(cb.LabelRanges[0], "chain.name", "chain name must be 1-128 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit, got %q", c.Name)
	}
	var blocks []*hcl.Block
	d.Body(cb.Body, "chain", cb.DefRange, []speccore.Field{{
		Name: "release", Labels: []string{"name"}, Repeated: true,
		Block: func(_ *speccore.Decoder, b *hcl.Block, _ string) { blocks = append(blocks, b) },
	}})
	if len(blocks) < 2 || len(blocks) > MaxChainReleases {
		d.ErrorAt(cb.DefRange, "chain", "a chain holds 2 to %d release blocks, got %d", MaxChainReleases, len(blocks))
	}
	seen := map[string]int{}
	for i, b := range blocks {
		st := chainRelease(d, b)
		name := st.Release.Name
		at := func(f string) hcl.Range {
			if r, ok := st.pos[f]; ok {
				return r
			}
			return b.DefRange
		}
		field := fmt.Sprintf("chain.release[%q]", name)
		if line, dup := seen[name]; dup {
			d.ErrorAt(b.LabelRanges[0], field, "duplicate release %q; it is already defined at line %d", name, line)
		}
		seen[name] = b.DefRange.Start.Line
		switch {
		case i == 0 && st.After != "":
			d.ErrorAt(at("after"), field+".after", "the first release of a chain starts first; remove after = %q", st.After)
		case i == 0 && st.MinGap != 0:
			d.ErrorAt(at("min_gap"), field+".min_gap", "the first release of a chain has no gap to wait; remove min_gap")
		case i > 0 && st.After == "":
			d.ErrorAt(b.DefRange, field, "missing required field \"after\"; write after = %q (the release before it)", blocks[i-1].Labels[0])
		case i > 0 && st.After != blocks[i-1].Labels[0]:
			d.ErrorAt(at("after"), field+".after", "must name the release just before it, %q, got %q (releases run in the order written)", blocks[i-1].Labels[0], st.After)
		}
		if st.MinGap < 0 || st.MinGap > MaxChainGap {
			d.ErrorAt(at("min_gap"), field+".min_gap", "must be between 0 and %s, got %s", MaxChainGap, st.MinGap)
		}
		c.Steps = append(c.Steps, st.ChainStep)
	}
	if err := d.Result(); err != nil {
		return nil, err
	}
	return c, nil
}

type decodedStep struct {
	ChainStep
	pos map[string]hcl.Range
}

// chainRelease decodes one release block of a chain with a decoder of its
// own (field paths are a release file's, "release.…"), and adds its
// findings to d with the field naming the release.
func chainRelease(d *speccore.Decoder, b *hcl.Block) decodedStep {
	rd := speccore.NewDecoder(d.File)
	r := DefaultRelease()
	r.Name = b.Labels[0]
	var st ChainStep
	rd.Pos["release"] = b.DefRange
	rd.Pos["release.name"] = b.LabelRanges[0]
	fields := append(releaseFields(r),
		speccore.Attr("after", speccore.Str(&st.After)),
		speccore.Attr("min_gap", speccore.Duration(&st.MinGap)),
	)
	rd.Body(b.Body, "release", b.DefRange, fields)
	applyDerivedDefaults(r, func(path string) bool { _, ok := rd.Pos[path]; return ok })
	rd.Place(r.validate())
	prefix := fmt.Sprintf("chain.release[%q]", r.Name)
	for _, dg := range rd.Diags {
		if rest, ok := strings.CutPrefix(dg.Field, "release"); ok {
			dg.Field = prefix + rest
		} else if dg.Field == "" {
			dg.Field = prefix
		}
		d.Diags = append(d.Diags, dg)
	}
	st.Release = r
	pos := map[string]hcl.Range{}
	for _, f := range []string{"after", "min_gap"} {
		if p, ok := rd.Pos["release."+f]; ok {
			pos[f] = p
		}
	}
	return decodedStep{ChainStep: st, pos: pos}
}
