package speccore

import (
	"fmt"
	"sort"
	"strings"
)

// Diagnostic is one problem found in a spec or config.
type Diagnostic struct {
	// File is the file name given to the parser; empty for values that did
	// not come from a file (flag-built configs, specs from the API).
	File string
	// Line and Column are 1-based; zero when there is no source position.
	Line, Column int
	// Field is the path of the offending field or block, e.g.
	// "release.phases.factor" or "addresses.grpc". Empty for syntax errors
	// and for unknown top-level fields.
	Field string
	// Message says what is wrong, the bad value when there is one, and what
	// was expected.
	Message string
}

// Error formats the diagnostic as "file:line:column: field: message",
// leaving out the parts that are unknown.
func (d Diagnostic) Error() string {
	var b strings.Builder
	if d.File != "" || d.Line > 0 {
		file := d.File
		if file == "" {
			file = "<input>"
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", file, d.Line, d.Column)
	}
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is the error returned by the parsers and Validate methods. It
// holds every problem found, in source order where positions are known.
type Diagnostics []Diagnostic

// Error joins the diagnostics one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns ds as an error, or nil when it is empty (avoiding the typed-nil
// interface trap).
func (ds Diagnostics) Err() error {
	if len(ds) == 0 {
		return nil
	}
	return ds
}

// sortByPosition orders diagnostics by line then column, keeping the
// relative order of diagnostics at the same position.
func (ds Diagnostics) sortByPosition() {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Column < ds[j].Column
	})
}

// Problem is a validation finding before a source position is attached.
type Problem struct {
	// path locates the problem for position lookup and for suppressing
	// findings about fields that already failed to decode. It is usually
	// field, but for a missing field it names the field itself while field
	// names the enclosing block.
	path  string
	field string
	msg   string
}

// Problems collects validation findings.
type Problems []Problem

// Add records a problem with the field at path.
func (ps *Problems) Add(path, format string, args ...any) {
	*ps = append(*ps, Problem{path: path, field: path, msg: fmt.Sprintf(format, args...)})
}

// Missing records that block lacks the required field name.
func (ps *Problems) Missing(block, name string) {
	ps.AddIn(JoinPath(block, name), block, "missing required field %q", name)
}

// AddIn records a problem reported on field (an enclosing block) but
// located, and suppressed when it already failed to decode, by path.
func (ps *Problems) AddIn(path, field, format string, args ...any) {
	*ps = append(*ps, Problem{path: path, field: field, msg: fmt.Sprintf(format, args...)})
}

// Diagnostics converts the findings without source positions, for the
// public Validate methods.
func (ps Problems) Diagnostics() Diagnostics {
	var ds Diagnostics
	for _, p := range ps {
		ds = append(ds, Diagnostic{Field: p.field, Message: p.msg})
	}
	return ds
}

// JoinPath builds a field path; an empty prefix means top level.
func JoinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Index builds the path of the i-th element of a list field.
func Index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// parent strips the last element ("x.y" or "x[3]") from a field path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
