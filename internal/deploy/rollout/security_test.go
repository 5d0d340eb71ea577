package rollout_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// refuse reports host's assignment failed as the agent does when its
// local policy refuses the order (internal/agent/worker.go).
func (c *cluster) refuse(host, why string) {
	c.t.Helper()
	a := c.state().Assignment(host, "api")
	c.must(raftfsm.UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: c.now.UnixNano(), Updates: []*v1.AssignmentUpdate{
		{Host: host, App: "api", Generation: a.GetGeneration(), State: failed, Reason: "refused by the host's local policy: " + why}}})
}

// Issue 11 item 12: when hosts refuse a release by policy (the app's
// first deploy: no slot facts, no version in the heartbeats), the rollback
// does not wait minutes for reverts that can never come: it ends at once,
// rolled back, naming the refusals.
func TestSecurityPolicyRefusalEndsRollbackPromptly(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.refuse("h1", `exec_start runs "+/bin/sh": systemd command prefixes are not allowed`)
	c.refuse("h2", "user root is not allowed (allow_root = false)")
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	c.wantRelease("r", rolledBack)
	if len(c.reverts) != 0 {
		t.Fatalf("revert orders sent to hosts that never took the release: %v", c.reverts)
	}
	reason := c.release("r").GetReason()
	for _, want := range []string{"2 host(s) never took the release", "h1 (refused by the host's local policy: exec_start", "h2 (refused by the host's local policy: user root"} {
		if !strings.Contains(reason, want) {
			t.Errorf("release reason %q does not say %q", reason, want)
		}
	}
}

// A host that switched is still reverted, and waited for; the refusing
// host is named when the rollback ends.
func TestSecurityPolicyRefusalWithSwitchedHosts(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.report("h1", healthy)
	c.refuse("h2", "user root is not allowed")
	c.settle("r")
	c.wantRelease("r", rollingBack)
	if !slices.Equal(c.reverts, []string{"h1"}) {
		t.Fatalf("reverts ordered to %v, want h1 only", c.reverts)
	}
	c.report("h1", reverted)
	c.settle("r")
	c.wantRelease("r", rolledBack)
	if r := c.release("r").GetReason(); !strings.Contains(r, "1 host(s) reverted") || !strings.Contains(r, "h2 (refused by the host's local policy") {
		t.Fatalf("release reason %q", r)
	}
}

// Issue 11 item 12: a release rolling back can be aborted (raftfsm
// AbortRelease); the orchestrator stops driving it: no more revert
// orders, hosts stay where they are.
func TestSecurityAbortWhileRollingBack(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.report("h1", healthy)
	c.report("h2", healthy)
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", State: rollingBack, Actor: "bob", CurrentPhase: -1})
	c.settle("r")
	c.wantRelease("r", rollingBack) // h1 and h2 are reverting; their agents are slow
	c.must(raftfsm.AbortRelease, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r",
		State: v1.ReleaseState_RELEASE_STATE_ABORTED, Reason: "stop the rollback", Actor: "bob", CurrentPhase: -1})
	sent := len(c.reverts)
	c.advance(time.Minute)
	done, err := c.o.StepForTest(context.Background(), "r")
	if err != nil || !done {
		t.Fatalf("step after abort: done %v, err %v", done, err)
	}
	c.wantRelease("r", v1.ReleaseState_RELEASE_STATE_ABORTED)
	if len(c.reverts) != sent {
		t.Fatalf("revert orders after the abort: %v", c.reverts[sent:])
	}
	for _, h := range []string{"h1", "h2"} {
		if a := c.state().Assignment(h, "api"); a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED {
			t.Fatalf("%s assignment = %v", h, a)
		}
	}
}
