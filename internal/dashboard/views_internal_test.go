package dashboard

import (
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Each gate row pairs the spec's threshold with the newest reading the
// orchestrator recorded under the same name.
func TestGateRowsPairThresholdsWithReadings(t *testing.T) {
	g := &rollwavev1.GatesSpec{MaxFailedHosts: &rollwavev1.Quantity{Value: 5, Percent: true}, MaxCpuPercent: 90}
	evs := []*rollwavev1.Event{
		{Kind: "gate.passed", Evidence: map[string]string{"gate": "max_cpu_percent", "value": "40", "limit": "90"}},
		{Kind: "gate.failed", Evidence: map[string]string{"gate": "max_cpu_percent", "value": "95", "limit": "90", "detail": "h3 at 95"}},
		{Kind: "gate.passed", Evidence: map[string]string{"gate": "host_health", "value": "1", "limit": "1"}},
	}
	rows := map[string]gateRow{}
	for _, r := range gateRows(g, evs) {
		rows[r.Name] = r
	}
	for name, want := range map[string]gateRow{
		"max_failed_hosts": {Name: "max_failed_hosts", Threshold: "5%"},
		"max_cpu_percent":  {Name: "max_cpu_percent", Threshold: "90", Reading: "95", Result: "failed", Detail: "h3 at 95"},
		"max_mem_percent":  {Name: "max_mem_percent", Threshold: "off"},
		"host_health":      {Name: "host_health", Threshold: "1", Reading: "1", Result: "passed"},
	} {
		if got := rows[name]; got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

// A tile's state: unreachable wins, then the last assignment, then drift.
func TestHostState(t *testing.T) {
	on := func(v string, st rollwavev1.AssignmentState, connected bool) *rollwavev1.HostView {
		hv := &rollwavev1.HostView{Connected: connected, Liveness: "alive",
			Host: &rollwavev1.Host{Id: "h", Apps: []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_GREEN, GreenVersion: v}}}}
		if !connected {
			hv.Liveness = "dead"
		}
		if st != 0 {
			hv.Assignments = []*rollwavev1.Assignment{{State: st, Version: v}}
		}
		return hv
	}
	current := map[string]string{"api": "2.0.0"}
	for _, tc := range []struct {
		hv     *rollwavev1.HostView
		active bool
		want   string
	}{
		{on("2.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, false), true, "unreachable"},
		{on("2.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, true), true, "baking"},
		{on("1.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, true), true, "reverted_isolated"},
		{on("2.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, true), false, "healthy"},
		// Serves 1.0.0 while 2.0.0 is current and nothing rolls out.
		{on("1.0.0", 0, true), false, "drifted"},
		{on("1.0.0", 0, true), true, "idle"},
	} {
		if got := hostState(tc.hv, current, map[string]bool{"api": tc.active}); got != tc.want {
			t.Errorf("%v active=%v: %s, want %s", tc.hv.GetAssignments(), tc.active, got, tc.want)
		}
	}
}

// A release with parallel regions shows one row per region and its
// regional phases name their region.
func TestBuildReleaseShowsRegions(t *testing.T) {
	r := &rollwavev1.Release{Id: "api-2", State: rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED,
		Phases: []*rollwavev1.Phase{{Index: 0}, {Index: 1, Region: "eu"}, {Index: 2, Region: "us"}},
		Regions: []*rollwavev1.RegionProgress{
			{Region: "eu", State: rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, FirstPhase: 1, PhaseCount: 1, CurrentPhase: 1},
			{Region: "us", State: rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, FirstPhase: 2, PhaseCount: 1, CurrentPhase: 2, Reason: "phase 2 failed"},
		}}
	v := buildRelease(&rollwavev1.GetReleaseResponse{Release: r}, nil)
	if v.Phases[1].Region != "eu" || v.Phases[2].Region != "us" || v.Phases[0].Region != "" {
		t.Errorf("phases = %+v", v.Phases)
	}
	want := []regionRow{{Name: "eu", State: "succeeded", Phase: "1 of phases 1-1"}, {Name: "us", State: "rolled_back", Phase: "2 of phases 2-2", Reason: "phase 2 failed"}}
	if len(v.Regions) != 2 || v.Regions[0] != want[0] || v.Regions[1] != want[1] {
		t.Errorf("regions = %+v, want %+v", v.Regions, want)
	}
	if v.State != "partially_succeeded" {
		t.Errorf("state = %q", v.State)
	}
}
