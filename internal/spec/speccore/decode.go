package speccore

import (
	"fmt"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/json"
)

// Decoder walks an hcl.Body against a table of known fields, writing values
// into Go structs. It records the source range of every field it sees so
// that validation findings (which only know field paths) can be placed, and
// remembers which fields failed to decode so that validation does not
// report them a second time.
//
// We decode by hand rather than with gohcl because gohcl's messages carry
// no field path and its required-field errors cannot name the block.
type Decoder struct {
	File   string
	Diags  Diagnostics
	Pos    map[string]hcl.Range
	failed map[string]bool
	// described, when set, puts the decoder in describe mode (describe.go):
	// body records field paths instead of decoding.
	described map[string]bool
}

func NewDecoder(file string) *Decoder {
	return &Decoder{File: file, Pos: map[string]hcl.Range{}, failed: map[string]bool{}}
}

// Parse parses src as JSON when the file name ends in ".json" and as HCL
// native syntax otherwise, after checking it against the limits in
// parse_limits.go. It returns nil when the source does not parse.
func (d *Decoder) Parse(src []byte) hcl.Body {
	var f *hcl.File
	var diags hcl.Diagnostics
	isJSON := strings.HasSuffix(strings.ToLower(d.File), ".json")
	if !d.checkLimits(src, isJSON) {
		return nil
	}
	if isJSON {
		f, diags = json.Parse(src, d.File)
	} else {
		f, diags = hclsyntax.ParseConfig(src, d.File, hcl.InitialPos)
	}
	d.structural(diags, "")
	if diags.HasErrors() || f == nil {
		return nil
	}
	return f.Body
}

// Start is the position of the top of the file, used for problems that
// belong to the whole file.
func (d *Decoder) Start() hcl.Range {
	return hcl.Range{Filename: d.File, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// ErrorAt records a diagnostic at rng for field.
func (d *Decoder) ErrorAt(rng hcl.Range, field, format string, args ...any) {
	d.Diags = append(d.Diags, Diagnostic{
		File:    d.File,
		Line:    rng.Start.Line,
		Column:  rng.Start.Column,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// fail records a diagnostic for the field at path and marks it failed.
func (d *Decoder) fail(rng hcl.Range, path, format string, args ...any) {
	d.ErrorAt(rng, path, format, args...)
	d.failed[path] = true
}

// hclDiags converts HCL's own diagnostics about the value at path,
// prefixing the field path so no generic message reaches the user without
// it, and marks path failed.
func (d *Decoder) hclDiags(diags hcl.Diagnostics, path string) {
	if d.structural(diags, path) && path != "" {
		d.failed[path] = true
	}
}

// structural converts HCL's diagnostics about the shape of the body at
// path without marking it failed: one misshapen entry must not hide every
// other finding in the block. It reports whether there were errors.
func (d *Decoder) structural(diags hcl.Diagnostics, path string) bool {
	found := false
	for _, hd := range diags {
		if hd.Severity != hcl.DiagError {
			continue
		}
		rng := d.Start()
		if hd.Subject != nil {
			rng = *hd.Subject
		} else if hd.Context != nil {
			rng = *hd.Context
		}
		msg := lowerFirst(strings.TrimSuffix(hd.Summary, "."))
		if hd.Detail != "" {
			msg += ": " + hd.Detail
		}
		d.ErrorAt(rng, path, "%s", msg)
		found = true
	}
	return found
}

// covered reports whether path, or a block or list containing it, failed
// to decode.
func (d *Decoder) covered(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if d.failed[p] {
			return true
		}
	}
	return false
}

// lookup returns the source range of path or of its nearest recorded
// ancestor (a missing field is reported at its block).
func (d *Decoder) lookup(path string) hcl.Range {
	for p := path; p != ""; p = parent(p) {
		if r, ok := d.Pos[p]; ok {
			return r
		}
	}
	return d.Start()
}

// Place attaches positions to validation findings, dropping those about
// fields that already failed to decode.
func (d *Decoder) Place(ps Problems) {
	for _, p := range ps {
		if d.covered(p.path) {
			continue
		}
		d.ErrorAt(d.lookup(p.path), p.field, "%s", p.msg)
	}
}

// Result returns the collected diagnostics in source order, or nil.
func (d *Decoder) Result() error {
	d.Diags.sortByPosition()
	return d.Diags.Err()
}

// AttrFunc decodes one attribute's expression into a Go value.
type AttrFunc func(d *Decoder, expr hcl.Expression, path string)

// BlockFunc decodes one nested block.
type BlockFunc func(d *Decoder, b *hcl.Block, path string)

// Field describes one attribute or nested block a body may contain.
type Field struct {
	Name string
	// Attr decodes an attribute; nil for blocks.
	Attr AttrFunc
	// Block decodes a nested block; nil for attributes.
	Block BlockFunc
	// Labels names the block's labels.
	Labels []string
	// OptionalLabel, when set, allows one more trailing label in native
	// syntax (JSON cannot express a variable number of labels).
	OptionalLabel string
	// Repeated allows the block more than once; its path gets an index.
	Repeated bool
	// Required makes a missing block an error.
	Required bool
}

func Attr(name string, fn AttrFunc) Field { return Field{Name: name, Attr: fn} }

func Block(name string, fn BlockFunc) Field { return Field{Name: name, Block: fn} }

func RequiredBlock(name string, fn BlockFunc) Field {
	return Field{Name: name, Block: fn, Required: true}
}

// Body decodes body, whose own path is path and whose definition is at
// where, against fields.
func (d *Decoder) Body(body hcl.Body, path string, where hcl.Range, fields []Field) {
	if d.described != nil {
		d.describeBody(path, fields)
		return
	}
	native, _ := body.(*hclsyntax.Body)
	schema := &hcl.BodySchema{}
	for _, f := range fields {
		switch {
		case f.Attr != nil:
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: f.Name})
		case native != nil && f.OptionalLabel != "":
			// Collected from the syntax tree below: a schema fixes the
			// label count.
		default:
			schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: f.Name, LabelNames: f.Labels})
		}
	}
	content, remain, diags := body.PartialContent(schema)
	d.structural(diags, path)
	d.unknown(body, remain, path, fields)

	blocks := content.Blocks
	for _, f := range fields {
		if f.OptionalLabel == "" || native == nil {
			continue
		}
		for _, nb := range native.Blocks {
			if nb.Type != f.Name {
				continue
			}
			if n := len(nb.Labels); n < len(f.Labels) || n > len(f.Labels)+1 {
				d.fail(nb.TypeRange, JoinPath(path, f.Name), "block %q takes labels %s and an optional %s, got %d labels",
					f.Name, strings.Join(f.Labels, ", "), f.OptionalLabel, n)
				continue
			}
			blocks = append(blocks, nb.AsHCLBlock())
		}
	}

	for _, f := range fields {
		p := JoinPath(path, f.Name)
		if f.Attr != nil {
			if a, ok := content.Attributes[f.Name]; ok {
				d.Pos[p] = a.Expr.Range()
				f.Attr(d, a.Expr, p)
			}
			continue
		}
		var of []*hcl.Block
		for _, b := range blocks {
			if b.Type == f.Name {
				of = append(of, b)
			}
		}
		if len(of) == 0 && f.Required {
			d.ErrorAt(where, path, "missing required block %q", f.Name)
			d.failed[p] = true
		}
		for i, b := range of {
			if !f.Repeated {
				if i > 0 {
					d.ErrorAt(b.DefRange, p, "duplicate %q block; it is already defined at line %d", f.Name, of[0].DefRange.Start.Line)
					continue
				}
				d.Pos[p] = b.DefRange
				f.Block(d, b, p)
				continue
			}
			ip := Index(p, i)
			d.Pos[ip] = b.DefRange
			f.Block(d, b, ip)
		}
	}
}

// unknown reports attributes and blocks that no field describes.
func (d *Decoder) unknown(body, remain hcl.Body, path string, fields []Field) {
	attrs := map[string]bool{}
	blocks := map[string]bool{}
	var names []string
	for _, f := range fields {
		names = append(names, f.Name)
		if f.Attr != nil {
			attrs[f.Name] = true
		} else {
			blocks[f.Name] = true
		}
	}
	expected := "; expected one of " + strings.Join(names, ", ")
	if native, ok := body.(*hclsyntax.Body); ok {
		for name, a := range native.Attributes {
			switch {
			case blocks[name]:
				d.fail(a.NameRange, JoinPath(path, name), "%q is a block, not a field; write %s { ... }", name, name)
			case !attrs[name]:
				d.ErrorAt(a.NameRange, path, "unknown field %q%s%s", name, Suggest(name, names), expected)
			}
		}
		for _, b := range native.Blocks {
			switch {
			case attrs[b.Type]:
				d.fail(b.TypeRange, JoinPath(path, b.Type), "%q is a field, not a block; write %s = ...", b.Type, b.Type)
			case !blocks[b.Type]:
				d.ErrorAt(b.TypeRange, path, "unknown block %q%s%s", b.Type, Suggest(b.Type, names), expected)
			}
		}
		return
	}
	// JSON cannot tell blocks from attributes without a schema: whatever
	// the schema did not claim is left over as an attribute.
	left, diags := remain.JustAttributes()
	d.structural(diags, path)
	for name, a := range left {
		d.ErrorAt(a.NameRange, path, "unknown field %q%s%s", name, Suggest(name, names), expected)
	}
}

// Suggest proposes the known name closest to a misspelt one.
func Suggest(name string, names []string) string {
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
