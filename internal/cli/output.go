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

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// jsonOptions keep field names as in the .proto files, so scripts depend on
// the protocol's names and not on Go's.
var jsonOptions = protojson.MarshalOptions{Multiline: true, UseProtoNames: true, EmitUnpopulated: false}

// addJSONFlag gives a read command its -json flag.
func addJSONFlag(cmd *cobra.Command, target *bool) {
	cmd.Flags().BoolVar(target, "json", false, "print the result as JSON (protobuf field names)")
}

// writeJSON prints one message as indented JSON.
func writeJSON(w io.Writer, m proto.Message) error {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	return writeIndented(w, raw)
}

// writeJSONList prints messages as one indented JSON array ("[]" when empty).
func writeJSONList[M proto.Message](w io.Writer, items []M) error {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		raw, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
	return writeIndented(w, buf.Bytes())
}

// writeIndented re-indents JSON. protojson deliberately varies its whitespace
// between runs; compacting and indenting again makes the output stable.
func writeIndented(w io.Writer, raw []byte) error {
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return err
	}
	// Servers redact URL credentials; an older server may not have.
	if err := json.Indent(&out, []byte(spec.RedactURLsIn(compact.String())), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
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
