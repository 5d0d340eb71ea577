package cli

import (
	"bytes"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// release status shows, per phase, the new version's share of its hosts'
// traffic, and lists each host not yet all on the new version: dark (with
// or without shadow) or mid-step.
func TestReleaseStatusShowsTrafficWeight(t *testing.T) {
	r := &rollwavev1.Release{Id: "api-2", Spec: &rollwavev1.ReleaseSpec{App: "api", Version: "2"}, State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		CurrentPhase: 1, Phases: []*rollwavev1.Phase{{Index: 0, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED, Hosts: []string{"web-1"}},
			{Index: 1, State: rollwavev1.PhaseState_PHASE_STATE_DEPLOYING, Hosts: []string{"web-2", "web-3", "web-4"}}}}
	traffic := []*rollwavev1.HostTraffic{
		{Host: "web-1", Phase: 0, NewWeight: 100},
		{Host: "web-2", Phase: 1, NewWeight: 0, Dark: true, Shadow: true},
		{Host: "web-3", Phase: 1, NewWeight: 10},
		{Host: "web-4", Phase: 1, NewWeight: 0, Dark: true, Shadow: true},
	}
	var b bytes.Buffer
	if err := renderStatus(&b, testNow, r, nil, nil, traffic); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"TRAFFIC",
		"1×100%",
		"2×0% (dark, shadow) 1×10%",
		"Traffic not yet all on the new version:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, host := range []string{"web-2  1      0% (dark, shadow)", "web-3  1      10%"} {
		if !strings.Contains(out, host) {
			t.Errorf("status lacks host line %q:\n%s", host, out)
		}
	}
	if strings.Contains(out, "web-1  0") {
		t.Errorf("a host with all its traffic on the new version is listed:\n%s", out)
	}
}
