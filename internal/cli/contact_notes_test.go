package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// heldEvent is the event a leader records for a host's hold report.
func heldEvent(seq uint64, host string, gen, heldFor string) *rollwavev1.Event {
	ev := map[string]string{"app": "api", "generation": gen,
		"report": "held version 2.4.0 for " + heldFor + " while the control plane was down (no leader for 41s; control plane down: peers reachable and no live leader)"}
	if heldFor != "" {
		ev["held_for"] = heldFor
	}
	return &rollwavev1.Event{Seq: seq, TimeUnixNano: nanos(testNow.Add(-5 * time.Minute)), ReleaseId: "api-2.4.0", Kind: "host.held_control_plane_down",
		Actor: "agent:" + host, Host: host, Message: "host " + host + " held api generation " + gen + " through a control-plane outage", Evidence: ev}
}

const isolatedReason = "revert: no leader ack for 31s (isolation_timeout 30s); isolated: peers still see leader coord-1 alive"

// TestHostsShowHeldAndRevertedIsolated: `rollwave hosts` has a NOTE per
// host for its current assignment: a host that held through a
// control-plane outage shows held_control_plane_down with how long (from
// the latest such event of that generation; an older generation's hold is
// not shown), one that reverted alone shows reverted_isolated. Before,
// the hold was only an event of the release and hosts showed neither.
func TestHostsShowHeldAndRevertedIsolated(t *testing.T) {
	f := fixture()
	f.hosts[0].Assignments = []*rollwavev1.Assignment{{Host: "web-1", App: "api", Generation: 7, ReleaseId: "api-2.4.0",
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, Version: "2.4.0"}}
	f.hosts[1].Assignments = []*rollwavev1.Assignment{{Host: "web-2", App: "api", Generation: 3, ReleaseId: "api-2.4.0",
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, Version: "2.4.0", Reason: isolatedReason}}
	f.events = append(f.events,
		heldEvent(4, "web-1", "6", "1m0s"), // an older generation: not the current assignment
		heldEvent(5, "web-1", "7", "12s"),
		heldEvent(6, "web-1", "7", "35.2s"), // the latest report of generation 7 wins
	)
	addr := startServer(t, f)
	r := runAt(t, addr, "hosts").expect(t, ExitOK)
	assertLines(t, r.stdout,
		"HOST CELL REGION LIVENESS CONNECTED LAST CONTACT APPS NOTE",
		"web-1 eu-1a eu alive yes 3s ago api:blue@2.4.0(green 2.3.0) api gen 7: held_control_plane_down 35s",
		"web-2 eu-1b eu dead no never api:green@2.4.0(blue 2.3.0) api gen 3: reverted_isolated",
	)
	if req := lastRequest[*rollwavev1.ListEventsRequest](t, f, "ListEvents"); req.GetReleaseId() != "api-2.4.0" {
		t.Errorf("ListEvents for release %q, want api-2.4.0", req.GetReleaseId())
	}

	// -json keeps the server's host views as they are: no extra calls,
	// no extra fields.
	calls := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.reqs["ListEvents"])
	}
	before := calls()
	r = runAt(t, addr, "hosts", "-json").expect(t, ExitOK)
	if strings.Contains(r.stdout, "held_control_plane_down") || calls() != before {
		t.Errorf("hosts -json changed: %d ListEvents calls after %d\n%s", calls(), before, r.stdout)
	}
}

// TestHostsEventsErrorIsReported: when the events behind the NOTE column
// cannot be read, `rollwave hosts` says which release's events failed.
func TestHostsEventsErrorIsReported(t *testing.T) {
	f := fixture()
	f.hosts[0].Assignments = []*rollwavev1.Assignment{{Host: "web-1", App: "api", Generation: 7, ReleaseId: "api-2.4.0",
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED}}
	f.errs["ListEvents"] = statusErr(codes.Internal, "event log unreadable")
	addr := startServer(t, f)
	r := runAt(t, addr, "hosts")
	if r.code == ExitOK || !strings.Contains(r.stderr, "events of release api-2.4.0") {
		t.Errorf("hosts with failing ListEvents: exit %d, stderr %q; want an error naming the release", r.code, r.stderr)
	}
}

// TestReleaseStatusShowsHostsWithoutLeader: `rollwave release status`
// lists, under the phases, each host that held through a control-plane
// outage (how long, and the agent's account) or reverted alone (its
// reason); nothing when no host did.
func TestReleaseStatusShowsHostsWithoutLeader(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0").expect(t, ExitOK)
	if strings.Contains(r.stdout, "Without a leader") {
		t.Errorf("status lists hosts without a leader when none was:\n%s", r.stdout)
	}

	f.release.Assignments = append(f.release.Assignments, &rollwavev1.Assignment{Host: "web-4", App: "api", Phase: 1, Generation: 2,
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, Version: "2.4.0", Reason: isolatedReason})
	f.events = append(f.events, heldEvent(4, "web-2", "3", "35.2s"))
	r = runAt(t, addr, "release", "status", "api-2.4.0").expect(t, ExitOK)
	assertLines(t, r.stdout,
		"1 baking 1/2 (1 failed/reverted) 12m30s left eu-1b gate.reading cpu_p95=55 mem_p95=63",
		"Without a leader:",
		"HOST APP GEN WHAT FOR REASON",
		"web-2 api 3 held_control_plane_down 35s held version 2.4.0 for 35.2s while the control plane was down (no leader for 41s; control plane down: peers reachable and no live leader)",
		"web-4 api 2 reverted_isolated - "+isolatedReason,
	)
}
