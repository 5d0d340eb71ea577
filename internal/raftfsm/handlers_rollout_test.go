package raftfsm

import (
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func planCmd(id string, hosts ...string) cmd {
	var ps []*v1.Phase
	for i, h := range hosts {
		ps = append(ps, &v1.Phase{Index: int32(i), Hosts: []string{h}, BakeMs: 1000})
	}
	return cmd{SetReleasePlan, &v1.SubmitReleaseCommand{TimeUnixNano: t0 + 50, Actor: "rollout", Release: &v1.Release{Id: id, Phases: ps}}}
}

func advanceCmd(id string, to int32) cmd {
	return cmd{AdvancePhase, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 60, ReleaseId: id, CurrentPhase: to, Reason: "test", Actor: "rollout"}}
}

func TestSetReleasePlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []cmd
		plan  cmd
		want  string // "" = accepted
	}{
		// A running release whose phases have not started is planned again.
		{"replaces a pending plan", base(), planCmd("api-1", "h2", "h1", "h2"), ""},
		// A release submitted without phases gets its first plan.
		{"plans an unplanned release", with(one(hostsCmd("eu-1", "h1")), one(cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: t0,
			Release: &v1.Release{Id: "web-1", Spec: &v1.ReleaseSpec{App: "web"}}}})), planCmd("web-1", "h1"), ""},
		{"unknown release", base(), planCmd("nope", "h1"), "does not exist"},
		// Once a phase started the plan is history.
		{"phase started", with(base(), one(phaseCmd("api-1", 0, psDeploying))), planCmd("api-1", "h1"), "cannot change once a phase started"},
		{"hosts assigned", with(base(), one(assignCmd("h1", "api", "api-1", 1))), planCmd("api-1", "h1"), "already has hosts assigned"},
		{"empty plan", base(), planCmd("api-1"), "at least one phase"},
		{"terminal release", with(base(), one(relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_ABORTED))), planCmd("api-1", "h1"), "only a pending or running release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(testutil.Logger(t))
			mustApply(t, f, tc.setup...)
			before := dumpNoIndex(f.State())
			res := apply(t, f, tc.plan)
			if tc.want != "" {
				if rej := asRejected(t, res); !strings.Contains(rej.Error(), tc.want) {
					t.Fatalf("rejection %q, want %q", rej, tc.want)
				}
				if dumpNoIndex(f.State()) != before {
					t.Fatal("a rejected plan changed the state")
				}
				return
			}
			if res != nil {
				t.Fatalf("rejected: %v", res)
			}
			id := tc.plan.m.(*v1.SubmitReleaseCommand).GetRelease().GetId()
			r := f.State().Release(id)
			if len(r.GetPhases()) != len(tc.plan.m.(*v1.SubmitReleaseCommand).GetRelease().GetPhases()) || r.GetPhases()[0].GetState() != psPending || r.GetCurrentPhase() != 0 {
				t.Fatalf("release %v", r)
			}
			if err := CheckInvariants(f.State()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAdvancePhase(t *testing.T) {
	verified := with(base(), one(phaseCmd("api-1", 0, psDeploying), phaseCmd("api-1", 0, psBaking), phaseCmd("api-1", 0, psVerified)))
	for _, tc := range []struct {
		name  string
		setup []cmd
		adv   cmd
		want  string
	}{
		{"next phase after verified", verified, advanceCmd("api-1", 1), ""},
		{"current phase not verified", with(base(), one(phaseCmd("api-1", 0, psDeploying))), advanceCmd("api-1", 1), "must be verified first"},
		{"skipping a phase", verified, advanceCmd("api-1", 2), "can only advance from phase 0 to 1"},
		{"going back", verified, advanceCmd("api-1", 0), "can only advance"},
		{"paused release", with(verified, one(relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_PAUSED))), advanceCmd("api-1", 1), "only a running release"},
		{"state other than running", verified, cmd{AdvancePhase, &v1.SetReleaseStateCommand{ReleaseId: "api-1", CurrentPhase: 1,
			State: v1.ReleaseState_RELEASE_STATE_SUCCEEDED}}, "keeps the release running"},
		{"unknown release", verified, advanceCmd("nope", 1), "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(testutil.Logger(t))
			mustApply(t, f, tc.setup...)
			before := dumpNoIndex(f.State())
			res := apply(t, f, tc.adv)
			if tc.want != "" {
				if rej := asRejected(t, res); !strings.Contains(rej.Error(), tc.want) {
					t.Fatalf("rejection %q, want %q", rej, tc.want)
				}
				if dumpNoIndex(f.State()) != before {
					t.Fatal("a rejected advance changed the state")
				}
				return
			}
			if res != nil {
				t.Fatalf("rejected: %v", res)
			}
			r := f.State().Release("api-1")
			if r.GetCurrentPhase() != 1 || r.GetState() != rsRunning {
				t.Fatalf("release %v", r)
			}
			ev := f.State().Events("api-1", 0, 0)
			if last := ev[len(ev)-1]; last.GetKind() != "release.advanced" || last.GetPhase() != 1 {
				t.Fatalf("last event %v", last)
			}
		})
	}
}
