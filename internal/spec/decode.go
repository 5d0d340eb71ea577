package spec

import (
	"fmt"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/json"
)

// decoder walks an hcl.Body against a table of known fields, writing values
// into Go structs. It records the source range of every field it sees so
// that validation findings (which only know field paths) can be placed, and
// remembers which fields failed to decode so that validation does not
// report them a second time.
//
// We decode by hand rather than with gohcl because gohcl's messages carry
// no field path and its required-field errors cannot name the block.
type decoder struct {
	file   string
	diags  Diagnostics
	pos    map[string]hcl.Range
	failed map[string]bool
	// described, when set, puts the decoder in describe mode (describe.go):
	// body records field paths instead of decoding.
	described map[string]bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]hcl.Range{}, failed: map[string]bool{}}
}

// parse parses src as JSON when the file name ends in ".json" and as HCL
// native syntax otherwise, after checking it against the limits in
// parse_limits.go. It returns nil when the source does not parse.
func (d *decoder) parse(src []byte) hcl.Body {
	var f *hcl.File
	var diags hcl.Diagnostics
	isJSON := strings.HasSuffix(strings.ToLower(d.file), ".json")
	if !d.checkLimits(src, isJSON) {
		return nil
	}
	if isJSON {
		f, diags = json.Parse(src, d.file)
	} else {
		f, diags = hclsyntax.ParseConfig(src, d.file, hcl.InitialPos)
	}
	d.structural(diags, "")
	if diags.HasErrors() || f == nil {
		return nil
	}
	return f.Body
}

// start is the position of the top of the file, used for problems that
// belong to the whole file.
func (d *decoder) start() hcl.Range {
	return hcl.Range{Filename: d.file, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// errorAt records a diagnostic at rng for field.
func (d *decoder) errorAt(rng hcl.Range, field, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{
		File:    d.file,
		Line:    rng.Start.Line,
		Column:  rng.Start.Column,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// fail records a diagnostic for the field at path and marks it failed.
func (d *decoder) fail(rng hcl.Range, path, format string, args ...any) {
	d.errorAt(rng, path, format, args...)
	d.failed[path] = true
}

// hclDiags converts HCL's own diagnostics about the value at path,
// prefixing the field path so no generic message reaches the user without
// it, and marks path failed.
func (d *decoder) hclDiags(diags hcl.Diagnostics, path string) {
	if d.structural(diags, path) && path != "" {
		d.failed[path] = true
	}
}

// structural converts HCL's diagnostics about the shape of the body at
// path without marking it failed: one misshapen entry must not hide every
// other finding in the block. It reports whether there were errors.
func (d *decoder) structural(diags hcl.Diagnostics, path string) bool {
	found := false
	for _, hd := range diags {
		if hd.Severity != hcl.DiagError {
			continue
		}
		rng := d.start()
		if hd.Subject != nil {
			rng = *hd.Subject
		} else if hd.Context != nil {
			rng = *hd.Context
		}
		msg := lowerFirst(strings.TrimSuffix(hd.Summary, "."))
		if hd.Detail != "" {
			msg += ": " + hd.Detail
		}
		d.errorAt(rng, path, "%s", msg)
		found = true
	}
	return found
}

// covered reports whether path, or a block or list containing it, failed
// to decode.
func (d *decoder) covered(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if d.failed[p] {
			return true
		}
	}
	return false
}

// lookup returns the source range of path or of its nearest recorded
// ancestor (a missing field is reported at its block).
func (d *decoder) lookup(path string) hcl.Range {
	for p := path; p != ""; p = parent(p) {
		if r, ok := d.pos[p]; ok {
			return r
		}
	}
	return d.start()
}

// place attaches positions to validation findings, dropping those about
// fields that already failed to decode.
func (d *decoder) place(ps problems) {
	for _, p := range ps {
		if d.covered(p.path) {
			continue
		}
		d.errorAt(d.lookup(p.path), p.field, "%s", p.msg)
	}
}

// result returns the collected diagnostics in source order, or nil.
func (d *decoder) result() error {
	d.diags.sortByPosition()
	return d.diags.err()
}

// attrFunc decodes one attribute's expression into a Go value.
type attrFunc func(d *decoder, expr hcl.Expression, path string)

// blockFunc decodes one nested block.
type blockFunc func(d *decoder, b *hcl.Block, path string)

// field describes one attribute or nested block a body may contain.
type field struct {
	name string
	// attr decodes an attribute; nil for blocks.
	attr attrFunc
	// block decodes a nested block; nil for attributes.
	block blockFunc
	// labels names the block's labels.
	labels []string
	// optionalLabel, when set, allows one more trailing label in native
	// syntax (JSON cannot express a variable number of labels).
	optionalLabel string
	// repeated allows the block more than once; its path gets an index.
	repeated bool
	// required makes a missing block an error.
	required bool
}

func attr(name string, fn attrFunc) field { return field{name: name, attr: fn} }

func block(name string, fn blockFunc) field { return field{name: name, block: fn} }

func requiredBlock(name string, fn blockFunc) field {
	return field{name: name, block: fn, required: true}
}

// body decodes body, whose own path is path and whose definition is at
// where, against fields.
func (d *decoder) body(body hcl.Body, path string, where hcl.Range, fields []field) {
	if d.described != nil {
		d.describeBody(path, fields)
		return
	}
	native, _ := body.(*hclsyntax.Body)
	schema := &hcl.BodySchema{}
	for _, f := range fields {
		switch {
		case f.attr != nil:
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: f.name})
		case native != nil && f.optionalLabel != "":
			// Collected from the syntax tree below: a schema fixes the
			// label count.
		default:
			schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: f.name, LabelNames: f.labels})
		}
	}
	content, remain, diags := body.PartialContent(schema)
	d.structural(diags, path)
	d.unknown(body, remain, path, fields)

	blocks := content.Blocks
	for _, f := range fields {
		if f.optionalLabel == "" || native == nil {
			continue
		}
		for _, nb := range native.Blocks {
			if nb.Type != f.name {
				continue
			}
			if n := len(nb.Labels); n < len(f.labels) || n > len(f.labels)+1 {
				d.fail(nb.TypeRange, join(path, f.name), "block %q takes labels %s and an optional %s, got %d labels",
					f.name, strings.Join(f.labels, ", "), f.optionalLabel, n)
				continue
			}
			blocks = append(blocks, nb.AsHCLBlock())
		}
	}

	for _, f := range fields {
		p := join(path, f.name)
		if f.attr != nil {
			if a, ok := content.Attributes[f.name]; ok {
				d.pos[p] = a.Expr.Range()
				f.attr(d, a.Expr, p)
			}
			continue
		}
		var of []*hcl.Block
		for _, b := range blocks {
			if b.Type == f.name {
				of = append(of, b)
			}
		}
		if len(of) == 0 && f.required {
			d.errorAt(where, path, "missing required block %q", f.name)
			d.failed[p] = true
		}
		for i, b := range of {
			if !f.repeated {
				if i > 0 {
					d.errorAt(b.DefRange, p, "duplicate %q block; it is already defined at line %d", f.name, of[0].DefRange.Start.Line)
					continue
				}
				d.pos[p] = b.DefRange
				f.block(d, b, p)
				continue
			}
			ip := index(p, i)
			d.pos[ip] = b.DefRange
			f.block(d, b, ip)
		}
	}
}

// unknown reports attributes and blocks that no field describes.
func (d *decoder) unknown(body, remain hcl.Body, path string, fields []field) {
	attrs := map[string]bool{}
	blocks := map[string]bool{}
	var names []string
	for _, f := range fields {
		names = append(names, f.name)
		if f.attr != nil {
			attrs[f.name] = true
		} else {
			blocks[f.name] = true
		}
	}
	expected := "; expected one of " + strings.Join(names, ", ")
	if native, ok := body.(*hclsyntax.Body); ok {
		for name, a := range native.Attributes {
			switch {
			case blocks[name]:
				d.fail(a.NameRange, join(path, name), "%q is a block, not a field; write %s { ... }", name, name)
			case !attrs[name]:
				d.errorAt(a.NameRange, path, "unknown field %q%s%s", name, suggest(name, names), expected)
			}
		}
		for _, b := range native.Blocks {
			switch {
			case attrs[b.Type]:
				d.fail(b.TypeRange, join(path, b.Type), "%q is a field, not a block; write %s = ...", b.Type, b.Type)
			case !blocks[b.Type]:
				d.errorAt(b.TypeRange, path, "unknown block %q%s%s", b.Type, suggest(b.Type, names), expected)
			}
		}
		return
	}
	// JSON cannot tell blocks from attributes without a schema: whatever
	// the schema did not claim is left over as an attribute.
	left, diags := remain.JustAttributes()
	d.structural(diags, path)
	for name, a := range left {
		d.errorAt(a.NameRange, path, "unknown field %q%s%s", name, suggest(name, names), expected)
	}
}

// suggest proposes the known name closest to a misspelt one.
func suggest(name string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if dist := levenshtein.Distance(name, n, nil); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// lowerFirst lowercases an HCL summary's first letter so it reads on after
// "field: ".
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
