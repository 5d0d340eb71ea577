package coordinator

import (
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Spec validation accepts {{version}} and {{app}} in artifact.url; the
// agent must be sent the URL it will fetch (and check against its
// policy), not the template. The stored spec is left as written.
func TestAssignmentOrderExpandsArtifactURL(t *testing.T) {
	rs := &rollwavev1.ReleaseSpec{App: "api", Version: "2.4.0",
		Artifact: &rollwavev1.Artifact{Url: "https://artifacts.internal/{{app}}/{{version}}/{{app}}.tar.gz", Sha256: "ab"}}
	got := assignmentOrder(&rollwavev1.Assignment{Host: "h1"}, rs).GetAssignment().GetSpec().GetArtifact().GetUrl()
	if want := "https://artifacts.internal/api/2.4.0/api.tar.gz"; got != want {
		t.Errorf("order's artifact URL = %q, want %q", got, want)
	}
	if u := rs.GetArtifact().GetUrl(); u != "https://artifacts.internal/{{app}}/{{version}}/{{app}}.tar.gz" {
		t.Errorf("the stored spec was changed: %q", u)
	}
	plain := &rollwavev1.ReleaseSpec{App: "api", Version: "1", Artifact: &rollwavev1.Artifact{Url: "file:///srv/api.tgz"}}
	if o := assignmentOrder(nil, plain).GetAssignment().GetSpec(); o != plain {
		t.Error("a spec without placeholders was copied")
	}
}
