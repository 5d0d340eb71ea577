package spec

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// docs/release-spec.md is the reference users work from. Its tables must
// name every field each parser accepts, and nothing else, so the page
// cannot drift from the code.
func TestReferenceDocsNameEveryField(t *testing.T) {
	src, err := os.ReadFile("../../docs/release-spec.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := splitSections(string(src))
	for _, tc := range []struct {
		heading string
		want    []string
	}{
		{"## Release spec", ReleaseFields()},
		{"## Server config", ServerConfigFields()},
		{"## Agent config", speccore.AgentConfigFields()},
	} {
		body, ok := sections[tc.heading]
		if !ok {
			t.Errorf("docs/release-spec.md has no section starting %q", tc.heading)
			continue
		}
		got := tableFields(body)
		for _, f := range tc.want {
			if !slices.Contains(got, f) {
				t.Errorf("%s: the parser accepts %q but the doc's tables do not name it", tc.heading, f)
			}
		}
		for _, f := range got {
			if !slices.Contains(tc.want, f) {
				t.Errorf("%s: the doc names %q but the parser does not accept it", tc.heading, f)
			}
		}
	}
}

// splitSections maps each "## " heading's line prefix to its text.
func splitSections(doc string) map[string]string {
	out := map[string]string{}
	var cur string
	var b strings.Builder
	flush := func() {
		if cur != "" {
			out[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") {
			flush()
			for _, h := range []string{"## Release spec", "## Server config", "## Agent config"} {
				if strings.HasPrefix(line, h) {
					cur = h
				}
			}
			if !strings.HasPrefix(line, cur) {
				cur = line
			}
			continue
		}
		b.WriteString(line + "\n")
	}
	flush()
	return out
}

// fieldCell is a table row's first cell holding one field path in backticks.
var fieldCell = regexp.MustCompile("^\\| `([a-z_][a-z0-9_.]*)` \\|")

// tableFields lists the field paths in the first column of body's tables.
func tableFields(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if m := fieldCell.FindStringSubmatch(line); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
