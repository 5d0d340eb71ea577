package cli

import (
	"bytes"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// release status shows one line per region of a release with parallel
// regions, and each regional phase names its region.
func TestReleaseStatusShowsRegions(t *testing.T) {
	r := &rollwavev1.Release{Id: "api-2", Spec: &rollwavev1.ReleaseSpec{App: "api", Version: "2"}, State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		Phases: []*rollwavev1.Phase{
			{Index: 0, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED},
			{Index: 1, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED, Region: "eu"},
			{Index: 2, State: rollwavev1.PhaseState_PHASE_STATE_BAKING, Region: "eu"},
			{Index: 3, State: rollwavev1.PhaseState_PHASE_STATE_FAILED, Region: "us"},
		},
		Regions: []*rollwavev1.RegionProgress{
			{Region: "eu", State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, FirstPhase: 1, PhaseCount: 2, CurrentPhase: 2, Reason: "phase 1 verified"},
			{Region: "us", State: rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, FirstPhase: 3, PhaseCount: 1, CurrentPhase: 3, Reason: "phase 3 failed"},
		}}
	var b bytes.Buffer
	if err := renderStatus(&b, testNow, r, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"REGION", "2 (eu)", "3 (us)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[0] == "eu" || f[0] == "us") {
			lines[f[0]] = l
		}
	}
	if l := lines["eu"]; !strings.Contains(l, "running") || !strings.Contains(l, "2 (2 of 2: phases 1-2)") || !strings.Contains(l, "phase 1 verified") {
		t.Errorf("eu line = %q", l)
	}
	if l := lines["us"]; !strings.Contains(l, "rolling_back") || !strings.Contains(l, "phase 3 failed") {
		t.Errorf("us line = %q", l)
	}
	// Without regions, no region table.
	r.Regions = nil
	b.Reset()
	if err := renderStatus(&b, testNow, r, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "REGION") {
		t.Errorf("a release without regions shows a region table:\n%s", b.String())
	}
}
