package raftfsm

import (
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// regionalRelease: phase 0 shared, phases 1-2 region eu, phase 3 us.
func regionalRelease(id string) cmd {
	r := releaseMsg(id, "geo", 4)
	r.Phases[1].Region, r.Phases[2].Region, r.Phases[3].Region = "eu", "eu", "us"
	return cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: t0, Actor: "ops", Release: r}}
}

func regionCmd(id, region string, st v1.ReleaseState, cp int32) cmd {
	return cmd{SetRegionState, &v1.SetRegionStateCommand{TimeUnixNano: t0 + 10, ReleaseId: id, Region: region, State: st, CurrentPhase: cp, Actor: "rollout", Reason: "test"}}
}

func regionState(t *testing.T, f *FSM, id, region string) *v1.RegionProgress {
	t.Helper()
	r := f.State().Release(id)
	i := regionOf(r, region)
	if i < 0 {
		t.Fatalf("release %s has no region %s: %v", id, region, r.GetRegions())
	}
	return r.GetRegions()[i]
}

func TestRegionsDerivedFromThePlan(t *testing.T) {
	f := New(nil)
	mustApply(t, f, regionalRelease("g1"))
	rg := f.State().Release("g1").GetRegions()
	if len(rg) != 2 || rg[0].GetRegion() != "eu" || rg[0].GetFirstPhase() != 1 || rg[0].GetPhaseCount() != 2 ||
		rg[1].GetRegion() != "us" || rg[1].GetFirstPhase() != 3 || rg[1].GetPhaseCount() != 1 || rg[1].GetState() != rsPending {
		t.Fatalf("regions = %v", rg)
	}
	// A region split in two, or a shared phase after a regional one, is refused.
	bad := releaseMsg("g2", "geo2", 3)
	bad.Phases[0].Region, bad.Phases[1].Region, bad.Phases[2].Region = "eu", "us", "eu"
	asRejected(t, apply(t, f, cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: t0, Release: bad}}))
	bad = releaseMsg("g3", "geo3", 2)
	bad.Phases[0].Region = "eu"
	asRejected(t, apply(t, f, cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: t0, Release: bad}}))
	if f.State().Release("g2") != nil || f.State().Release("g3") != nil {
		t.Fatal("a rejected submit stored a release")
	}
}

// The region machine: start after the shared phases, advance over
// verified phases only, succeed with every phase verified, roll back
// alone; the release ends partially_succeeded only with some of each.
func TestSetRegionState(t *testing.T) {
	f := New(nil)
	mustApply(t, f, regionalRelease("g1"), relStateCmd("g1", rsRunning))
	// Shared phase 0 not verified yet: no region starts.
	asRejected(t, apply(t, f, regionCmd("g1", "eu", rsRunning, -1)))
	mustApply(t, f, phaseCmd("g1", 0, psDeploying), phaseCmd("g1", 0, psBaking), phaseCmd("g1", 0, psVerified))
	asRejected(t, apply(t, f, regionCmd("g1", "mars", rsRunning, -1)))
	mustApply(t, f, regionCmd("g1", "eu", rsRunning, -1), regionCmd("g1", "us", rsRunning, -1))
	// eu's phase 1 is pending: no advance, no success; no jump outside eu.
	asRejected(t, apply(t, f, regionCmd("g1", "eu", rsRunning, 2)))
	asRejected(t, apply(t, f, regionCmd("g1", "eu", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, -1)))
	asRejected(t, apply(t, f, regionCmd("g1", "eu", rsRunning, 3)))
	mustApply(t, f, phaseCmd("g1", 1, psDeploying), phaseCmd("g1", 1, psBaking), phaseCmd("g1", 1, psVerified),
		regionCmd("g1", "eu", rsRunning, 2))
	if g := regionState(t, f, "g1", "eu"); g.GetCurrentPhase() != 2 || g.GetState() != rsRunning {
		t.Fatalf("eu = %v", g)
	}
	mustApply(t, f, phaseCmd("g1", 2, psDeploying), phaseCmd("g1", 2, psBaking), phaseCmd("g1", 2, psVerified),
		regionCmd("g1", "eu", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, -1))
	// us fails and rolls back alone.
	mustApply(t, f, phaseCmd("g1", 3, psDeploying), phaseCmd("g1", 3, psFailed))
	// Not yet: us is still running.
	asRejected(t, apply(t, f, relStateCmd("g1", v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED)))
	mustApply(t, f, regionCmd("g1", "us", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK, -1))
	if r := f.State().Release("g1"); r.GetState() != rsRunning {
		t.Fatalf("a region's rollback moved the release: %v", r.GetState())
	}
	mustApply(t, f, regionCmd("g1", "us", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, -1),
		relStateCmd("g1", v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED))
	r := f.State().Release("g1")
	if r.GetState() != v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED || f.State().App("geo").GetActiveReleaseId() != "" || f.State().App("geo").GetCurrentVersion() != "" {
		t.Fatalf("release = %v app = %v", r.GetState(), f.State().App("geo"))
	}
	if g := regionState(t, f, "g1", "eu"); g.GetState() != v1.ReleaseState_RELEASE_STATE_SUCCEEDED {
		t.Fatalf("eu = %v", g)
	}
	if !ReleaseTerminal(r.GetState()) || !ReleaseFailed(r) {
		t.Fatal("partially_succeeded must be terminal and count as a failure")
	}
	asRejected(t, apply(t, f, regionCmd("g1", "eu", rsRunning, -1)))
	if err := CheckInvariants(f.State()); err != nil {
		t.Fatal(err)
	}
}

// A release-wide rollback (fail_all, or an operator's) takes every region
// with it; a region already rolled back on its own keeps its state.
func TestRegionsFollowTheRelease(t *testing.T) {
	f := New(nil)
	mustApply(t, f, regionalRelease("g1"), relStateCmd("g1", rsRunning),
		phaseCmd("g1", 0, psDeploying), phaseCmd("g1", 0, psBaking), phaseCmd("g1", 0, psVerified),
		regionCmd("g1", "eu", rsRunning, -1), regionCmd("g1", "us", rsRunning, -1),
		regionCmd("g1", "us", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK, -1), regionCmd("g1", "us", v1.ReleaseState_RELEASE_STATE_FAILED, -1),
		relStateCmd("g1", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK))
	if g := regionState(t, f, "g1", "eu"); g.GetState() != v1.ReleaseState_RELEASE_STATE_ROLLING_BACK {
		t.Fatalf("eu = %v", g)
	}
	mustApply(t, f, relStateCmd("g1", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK))
	if g := regionState(t, f, "g1", "eu"); g.GetState() != v1.ReleaseState_RELEASE_STATE_ROLLED_BACK {
		t.Fatalf("eu = %v", g)
	}
	if g := regionState(t, f, "g1", "us"); g.GetState() != v1.ReleaseState_RELEASE_STATE_FAILED {
		t.Fatalf("us = %v", g)
	}
}
