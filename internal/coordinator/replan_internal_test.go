package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestPlanDiffAndHostList(t *testing.T) {
	preview := []*rollwavev1.Phase{{Hosts: []string{"a"}}, {Hosts: []string{"b", "c"}}}
	next := []*rollwavev1.Phase{{Hosts: []string{"d"}}, {Hosts: []string{"c", "a"}}}
	added, removed := planDiff(preview, next)
	if !slices.Equal(added, []string{"d"}) || !slices.Equal(removed, []string{"b"}) {
		t.Fatalf("planDiff = +%v -%v, want +[d] -[b]", added, removed)
	}
	// Evidence lists at most maxEvidenceHosts names and says how many more.
	var many []string
	for i := 0; i < maxEvidenceHosts+3; i++ {
		many = append(many, fmt.Sprintf("h%03d", i))
	}
	got := hostList(many)
	if n := strings.Count(got, ","); n != maxEvidenceHosts || !strings.HasSuffix(got, "... (3 more)") {
		t.Fatalf("hostList(%d hosts) = %q", len(many), got)
	}
}
