package rollout_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// rehearsal turns rollback.rehearse on, with keepOld.
func rehearsal(keepOld, maxRollback string) func(string) string {
	return func(src string) string {
		src = strings.Replace(src, `keep_old   = "hot"`, fmt.Sprintf(`keep_old   = %q`, keepOld), 1)
		return strings.Replace(src, "  rollback {\n", fmt.Sprintf("  rollback {\n    rehearse = true\n    max_rollback_time = %q\n", maxRollback), 1)
	}
}

// TestE2ERollbackRehearsal (issue 17 item 3): the canary rolls back to
// the old version for real after its gates pass, rolls forward, and the
// measured time is in a phase.rehearsed event (and the agent's metric);
// the release then widens to the other phases.
func TestE2ERollbackRehearsal(t *testing.T) {
	f := newFleetOf(t, 1, 1)
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	histogram(t, f.leader().Registry(), "rollwave_rehearsal_rollback_seconds") // the coordinator counts from its first scrape on

	f.start("demo-2", "2.0.0", specOpts{edit: rehearsal("cold", "30s")})
	f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)
	f.waitServing(f.hosts, "2.0.0", 10*time.Second)

	evs := f.eventsOf("demo-2")
	var rehearsed []*v1.Event
	for _, e := range evs {
		if e.GetKind() == "phase.rehearsed" {
			rehearsed = append(rehearsed, e)
		}
	}
	as := f.leader().FSM().State().ReleaseAssignments("demo-2")
	if len(rehearsed) != 1 || len(as) != len(f.hosts) {
		t.Fatalf("%d phase.rehearsed events, %d hosts assigned; want 1 (the canary) and every host\n%s", len(rehearsed), len(as), f.dump("demo-2"))
	}
	e := rehearsed[0]
	ev := e.GetEvidence()
	ms, err := strconv.ParseInt(ev["rollback_ms"], 10, 64)
	if e.GetPhase() != 0 || ev["verdict"] != "passed" || err != nil || ms <= 0 || ev["max_rollback_time"] != "30s" ||
		ev["old_version"] != "1.0.0" || ev["new_version"] != "2.0.0" {
		t.Fatalf("phase.rehearsed %v, want phase 0 passed with a rollback time\n%s", ev, f.dump("demo-2"))
	}
	// The rehearsal is recorded with the decision: right before phase 0's
	// verified event, in the same entry (same time).
	i := slices.Index(evs, e)
	if i+1 >= len(evs) || evs[i+1].GetKind() != "phase.verified" || evs[i+1].GetTimeUnixNano() != e.GetTimeUnixNano() {
		t.Fatalf("phase.rehearsed not committed with phase 0's verification\n%s", f.dump("demo-2"))
	}
	// The canary's agent measured it, and the coordinator counts it.
	canary := e.GetHost()
	if h := histogram(t, f.agents[canary].Registry(), "rollwave_agent_rehearsal_rollback_seconds"); h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 {
		t.Fatalf("canary %s rehearsal histogram %v, want one observation", canary, h)
	}
	// The coordinator counts committed events while a scrape runs, and
	// the registry may collect the histogram before that: it shows by the
	// next scrape at the latest.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		h := histogram(t, f.leader().Registry(), "rollwave_rehearsal_rollback_seconds")
		return h.GetSampleCount() == 1 && h.GetSampleSum() == float64(ms)/1000,
			fmt.Sprintf("coordinator rehearsal histogram %v, want the one rehearsal of %dms", h, ms)
	})
	t.Logf("canary %s rolled back in %sms", canary, ev["rollback_ms"])
}

// histogram gathers the first series of a histogram (nil when none).
func histogram(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	return nil
}

// TestE2ERollbackRehearsalOldSlotCannotRestart (issue 17 item 3
// acceptance): the canary's old slot cannot start again (its port is
// taken), so the rehearsal fails, phase 0 fails with the reason and
// nothing widens. The release then takes the normal rollback path, whose
// revert cannot start the old slot either (the port stays taken): it ends
// failed and the canary keeps serving the new version — which is what the
// rehearsal found out before any other host was touched.
func TestE2ERollbackRehearsalOldSlotCannotRestart(t *testing.T) {
	f := newFleetOf(t, 1, 1)
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)

	// A long bake leaves time to take the port of the cold old slot once
	// the canary stopped it.
	f.start("demo-2", "2.0.0", specOpts{bake: "10s", edit: rehearsal("cold", "5s")})
	var canary string
	testutil.WaitFor(t, 40*time.Second, func() (bool, string) {
		as := f.leader().FSM().State().ReleaseAssignments("demo-2")
		if len(as) == 0 {
			return false, "no canary assigned"
		}
		canary = as[0].GetHost()
		switch as[0].GetState() {
		case v1.AssignmentState_ASSIGNMENT_STATE_BAKING, v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
			return true, ""
		}
		return false, "canary " + canary + " is " + as[0].GetState().String()
	})
	var l net.Listener
	addr := net.JoinHostPort(f.ips[canary], strconv.Itoa(f.blue))
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) { // until the cold old slot let go of it
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil, fmt.Sprintf("listen %s: %v", addr, err)
	})
	defer l.Close()
	if st := f.release("demo-2").GetPhases()[0].GetState(); st != v1.PhaseState_PHASE_STATE_DEPLOYING && st != v1.PhaseState_PHASE_STATE_BAKING {
		t.Fatalf("phase 0 is %s before the port was taken; the bake is too short for this machine\n%s", st, f.dump("demo-2"))
	}

	r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_FAILED, 90*time.Second)
	f.waitServing([]string{canary}, "2.0.0", 10*time.Second)
	if !strings.Contains(r.GetReason(), canary) {
		t.Errorf("release failed with %q, want the canary named", r.GetReason())
	}

	p0 := r.GetPhases()[0]
	if !strings.Contains(p0.GetReason(), "rollback rehearsal failed: "+canary) || !strings.Contains(p0.GetReason(), "rehearse_start_old") {
		t.Fatalf("phase 0 failed with %q, want the rehearsal's reason naming %s\n%s", p0.GetReason(), canary, f.dump("demo-2"))
	}
	if as := f.leader().FSM().State().ReleaseAssignments("demo-2"); len(as) != 1 {
		t.Fatalf("%d hosts assigned, want only the canary\n%s", len(as), f.dump("demo-2"))
	}
	i := slices.IndexFunc(f.eventsOf("demo-2"), func(e *v1.Event) bool { return e.GetKind() == "phase.rehearsed" })
	if i < 0 {
		t.Fatalf("no phase.rehearsed event\n%s", f.dump("demo-2"))
	}
	if ev := f.eventsOf("demo-2")[i].GetEvidence(); ev["verdict"] != "failed" || ev["rollback_ms"] != "0" || !strings.Contains(ev["reason"], "1.0.0") {
		t.Fatalf("phase.rehearsed evidence %v, want failed naming the old version", ev)
	}
	for _, kind := range []string{"phase.failed", "release.rolling_back", "revert.ordered"} {
		if !slices.ContainsFunc(f.eventsOf("demo-2"), func(e *v1.Event) bool { return e.GetKind() == kind }) {
			t.Errorf("no %s event:\n%s", kind, f.dump("demo-2"))
		}
	}
	t.Logf("phase 0: %s", p0.GetReason())
}
