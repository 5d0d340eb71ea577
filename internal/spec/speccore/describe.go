package speccore

import (
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// The field tables in release_parse.go, server.go and agent.go are the one
// definition of what each file accepts. Describing them walks those tables
// without a source (a decoder in describe mode records every field path and
// enters every block with an empty body), so the reference documentation
// can be checked against the parser by a test and cannot drift from it.

// AgentConfigFields lists every field path an agent config file accepts.
func AgentConfigFields() []string { return DescribeFields("", DefaultAgentConfig().fields()) }

func DescribeFields(path string, fields []Field) []string {
	d := NewDecoder("")
	d.described = map[string]bool{}
	d.describeBody(path, fields)
	return slices.Sorted(maps.Keys(d.described))
}

// describeBody records fields under path and describes nested blocks.
func (d *Decoder) describeBody(path string, fields []Field) {
	for _, f := range fields {
		p := JoinPath(path, f.Name)
		d.described[p] = true
		if f.Block == nil {
			continue
		}
		labels := make([]string, len(f.Labels))
		for i := range labels {
			labels[i] = "x"
		}
		b := &hcl.Block{Type: f.Name, Labels: labels, LabelRanges: make([]hcl.Range, len(labels)), Body: hcl.EmptyBody()}
		f.Block(d, b, p)
	}
}
