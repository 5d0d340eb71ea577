package spec

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

// ReleaseFields lists every field path a release spec accepts, e.g.
// "release.bake.first" and "release.health.check.url" (repeated blocks
// without an index), sorted.
func ReleaseFields() []string {
	return append([]string{"release"}, describeFields("release", releaseFields(DefaultRelease()))...)
}

// ServerConfigFields lists every field path a server config file accepts.
func ServerConfigFields() []string { return describeFields("", DefaultServerConfig().fields()) }

// AgentConfigFields lists every field path an agent config file accepts.
func AgentConfigFields() []string { return describeFields("", DefaultAgentConfig().fields()) }

func describeFields(path string, fields []field) []string {
	d := newDecoder("")
	d.described = map[string]bool{}
	d.describeBody(path, fields)
	return slices.Sorted(maps.Keys(d.described))
}

// describeBody records fields under path and describes nested blocks.
func (d *decoder) describeBody(path string, fields []field) {
	for _, f := range fields {
		p := join(path, f.name)
		d.described[p] = true
		if f.block == nil {
			continue
		}
		labels := make([]string, len(f.labels))
		for i := range labels {
			labels[i] = "x"
		}
		b := &hcl.Block{Type: f.name, Labels: labels, LabelRanges: make([]hcl.Range, len(labels)), Body: hcl.EmptyBody()}
		f.block(d, b, p)
	}
}
