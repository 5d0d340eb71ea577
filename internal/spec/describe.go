package spec

import (
	"github.com/rollwave/rollwave/internal/spec/speccore"
	// ReleaseFields lists every field path a release spec accepts, e.g.
	// "release.bake.first" and "release.health.check.url" (repeated blocks
	// without an index), sorted.
)

func ReleaseFields() []string {
	return append([]string{"release"}, speccore.DescribeFields("release", releaseFields(DefaultRelease()))...)
}

// ServerConfigFields lists every field path a server config file accepts.
func ServerConfigFields() []string {
	return speccore.DescribeFields("", DefaultServerConfig().fields())
}
