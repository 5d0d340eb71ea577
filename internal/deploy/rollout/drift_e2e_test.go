package rollout_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestE2ECutOffHostRevertsAloneThenConverges: with max_failed_hosts = 0
// and max_unreachable = 1, a host whose link is cut mid-bake reverts on
// its own; the release succeeds on the others; after the heal the host is
// drifted (ListHosts drift_only, GetRelease drifted) and a
// ConvergeRelease rolls it to the release.
//
// One coordinator: with three on a loaded machine, leader elections
// starved every agent of acks for longer than the short isolation_timeout
// this test needs, and hosts that were never cut reverted as isolated
// too (max_unreachable exceeded, release rolled back). Failover during a
// bake is covered elsewhere; this test is about the cut host.
func TestE2ECutOffHostRevertsAloneThenConverges(t *testing.T) {
	f := newFleetOf(t, 1, 3)
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)
	f.start("demo-2", "2.0.0", specOpts{bake: "8s", maxUnreachable: 1, isolation: "3s"})
	var victim string
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		r := f.release("demo-2")
		if r.GetCurrentPhase() == 1 && r.GetPhases()[1].GetState() == v1.PhaseState_PHASE_STATE_BAKING {
			victim = r.GetPhases()[1].GetHosts()[0]
			return true, ""
		}
		return false, fmt.Sprintf("phase %d %v", r.GetCurrentPhase(), r.GetPhases()[r.GetCurrentPhase()].GetState())
	})
	f.agents[victim].Link.Cut()
	t.Logf("cut %s's link during phase 1's bake", victim)
	// Its isolation watchdog reverts it alone; then the link heals and
	// it reports reverted_isolated.
	f.waitServing([]string{victim}, "1.0.0", 30*time.Second)
	f.agents[victim].Link.Heal()
	r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 120*time.Second)
	t.Logf("demo-2: %s", r.GetReason())
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		a := f.leader().FSM().State().Assignment(victim, "demo")
		return a.GetState() == v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, fmt.Sprintf("%s is %v", victim, a.GetState())
	})
	var hosts *v1.ListHostsResponse
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		var err error
		hosts, err = f.client().ListHosts(ctxT(t), &v1.ListHostsRequest{DriftOnly: true})
		if err != nil {
			return false, err.Error()
		}
		return len(hosts.GetHosts()) == 1 && hosts.GetHosts()[0].GetHost().GetId() == victim, fmt.Sprintf("drifted: %v", hosts.GetHosts())
	})
	d := hosts.GetHosts()[0].GetDrift()
	if len(d) != 1 || d[0].GetHasVersion() != "1.0.0" || d[0].GetWantsVersion() != "2.0.0" || d[0].GetReleaseId() != "demo-2" ||
		!strings.Contains(d[0].GetReason(), "reverted on its own") {
		t.Fatalf("drift of %s: %v", victim, d)
	}
	t.Logf("hosts -drift: %s: demo: has %s, wants %s (%s): %s", victim, d[0].GetHasVersion(), d[0].GetWantsVersion(), d[0].GetReleaseId(), d[0].GetReason())
	gr, err := f.client().GetRelease(ctxT(t), &v1.GetReleaseRequest{Id: "demo-2"})
	if err != nil || len(gr.GetDrifted()) != 1 || gr.GetDrifted()[0].GetHost() != victim {
		t.Fatalf("release status drifted = %v, %v", gr.GetDrifted(), err)
	}
	for _, e := range f.eventsOf("demo-2") {
		if e.GetKind() == "host.unreachable" || (e.GetKind() == "gate.passed" && e.GetEvidence()["gate"] == "max_unreachable" && e.GetEvidence()["hosts"] != "") {
			t.Logf("event %s phase=%d host=%s: %s %v", e.GetKind(), e.GetPhase(), e.GetHost(), e.GetMessage(), e.GetEvidence())
		}
	}
	cr, err := f.client().ConvergeRelease(ctxT(t), &v1.ConvergeReleaseRequest{App: "demo", Actor: "test", Reason: "link healed"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release converge demo: %s: %s", cr.GetRelease().GetId(), cr.GetRelease().GetReason())
	f.waitRelease(cr.GetRelease().GetId(), v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)
	for _, e := range f.eventsOf(cr.GetRelease().GetId()) {
		switch e.GetKind() {
		case "release.converge", "hosts.assigned", "release.succeeded":
			t.Logf("event %s %s phase=%d: %s %v", cr.GetRelease().GetId(), e.GetKind(), e.GetPhase(), e.GetMessage(), e.GetEvidence())
		}
	}
	f.waitServing([]string{victim}, "2.0.0", 30*time.Second)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		hosts, err := f.client().ListHosts(ctxT(t), &v1.ListHostsRequest{DriftOnly: true})
		return err == nil && len(hosts.GetHosts()) == 0, fmt.Sprintf("drifted after convergence: %v %v", hosts.GetHosts(), err)
	})
}
