package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The -json shape, the same for every read command (docs/operations.md,
// "JSON output"): one JSON object; a list is wrapped in an object under a
// plural name ({"hosts": [...]}); every field is present, zero values
// included (phase 0, false, ""), with the .proto field names; integers are
// JSON numbers (protojson writes 64-bit integers as strings, which
// shapeJSON turns back into numbers); enums are their names; keys sorted.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// addJSONFlag gives a read command its -json flag.
func addJSONFlag(cmd *cobra.Command, target *bool) {
	cmd.Flags().BoolVar(target, "json", false, "print the result as one JSON object (protobuf field names, every field present)")
}

// writeJSON prints one message as indented JSON.
func writeJSON(w io.Writer, m proto.Message) error {
	v, err := shapeJSON(m)
	if err != nil {
		return err
	}
	return writeValue(w, v, true)
}

// writeJSONLine prints one message as JSON on a single line, for streams
// (one object per line).
func writeJSONLine(w io.Writer, m proto.Message) error {
	v, err := shapeJSON(m)
	if err != nil {
		return err
	}
	return writeValue(w, v, false)
}

// writeJSONList prints messages as {"key": [...]} ("[]" when empty).
func writeJSONList[M proto.Message](w io.Writer, key string, items []M) error {
	list := make([]any, 0, len(items))
	for _, m := range items {
		v, err := shapeJSON(m)
		if err != nil {
			return err
		}
		list = append(list, v)
	}
	return writeValue(w, map[string]any{key: list}, true)
}

// writeValue encodes v (keys sorted by encoding/json, so the same value
// always prints the same bytes).
func writeValue(w io.Writer, v any, indent bool) error {
	var raw []byte
	var err error
	if indent {
		raw, err = json.MarshalIndent(v, "", "  ")
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	// Servers redact URL credentials; an older server may not have.
	out := append([]byte(spec.RedactURLsIn(string(raw))), '\n')
	_, err = w.Write(out)
	return err
}

// shapeJSON is protojson's encoding of m as a generic value, with 64-bit
// integer fields as numbers. protojson has no option for that (it follows
// the proto3 JSON mapping, which quotes them for JavaScript's sake), so the
// fields are found through m's descriptor: a string field that happens to
// hold digits stays a string.
func shapeJSON(m proto.Message) (any, error) {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v, m.ProtoReflect().Descriptor()), nil
}

// numbers rewrites the 64-bit integer fields of the JSON object v, which
// encodes a message of type md.
func numbers(v any, md protoreflect.MessageDescriptor) any {
	obj, ok := v.(map[string]any)
	if !ok || md.ParentFile().Package() == "google.protobuf" {
		return v // well-known types keep their own JSON forms
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		val, ok := obj[string(fd.Name())]
		if !ok {
			continue
		}
		switch {
		case fd.IsMap():
			if m, ok := val.(map[string]any); ok {
				for k, e := range m {
					m[k] = fieldNumbers(e, fd.MapValue())
				}
			}
		case fd.IsList():
			if l, ok := val.([]any); ok {
				for j, e := range l {
					l[j] = fieldNumbers(e, fd)
				}
			}
		default:
			obj[string(fd.Name())] = fieldNumbers(val, fd)
		}
	}
	return obj
}

// fieldNumbers converts one value of field fd.
func fieldNumbers(v any, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := v.(string); ok {
			return json.Number(s)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return numbers(v, fd.Message())
	}
	return v
}

// table writes aligned columns; rows are tab-separated cells.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline inside a cell would break the alignment.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		if cells[i] == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// keyValues prints "Key  value" lines aligned.
func keyValues(w io.Writer, pairs ...string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		v := pairs[i+1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", pairs[i], v)
	}
	return tw.Flush()
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// enumName turns RELEASE_STATE_ROLLED_BACK into "rolled_back".
func enumName(full, prefix string) string {
	s := strings.TrimPrefix(full, prefix)
	if s == "UNSPECIFIED" {
		return "unknown"
	}
	return strings.ToLower(s)
}

func releaseStateName(s rollwavev1.ReleaseState) string {
	return enumName(s.String(), "RELEASE_STATE_")
}

func phaseStateName(s rollwavev1.PhaseState) string {
	return enumName(s.String(), "PHASE_STATE_")
}

func assignmentStateName(s rollwavev1.AssignmentState) string {
	return enumName(s.String(), "ASSIGNMENT_STATE_")
}

func slotName(s rollwavev1.Slot) string {
	return enumName(s.String(), "SLOT_")
}

// timestamp formats a unix-nano time in UTC, or "" when unset.
func timestamp(unixNano int64) string {
	if unixNano == 0 {
		return ""
	}
	return time.Unix(0, unixNano).UTC().Format(time.RFC3339)
}

// ago formats how long before now a unix-nano time was: "3s ago".
func ago(now time.Time, unixNano int64) string {
	if unixNano == 0 {
		return "never"
	}
	d := now.Sub(time.Unix(0, unixNano))
	if d < 0 {
		d = 0 // clocks of coordinator and operator disagree slightly
	}
	return shortDuration(d) + " ago"
}

// shortDuration rounds to seconds: "12m30s", "12m" (not "12m0s"), "2h0m".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	return s
}

func msDuration(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return shortDuration(time.Duration(ms) * time.Millisecond)
}

// evidenceString prints a map as sorted "k=v" pairs.
func evidenceString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// truncateList joins up to max names and says how many more there are.
func truncateList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s,+%d more", strings.Join(names[:max], ","), len(names)-max)
}
