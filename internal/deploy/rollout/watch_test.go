package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const watchingState = v1.ReleaseState_RELEASE_STATE_WATCHING

// watched runs a two-phase release with a 1h post_rollout watch to its
// watch and returns the window's end.
func (c *cluster) watched(id string, tweak func(*v1.ReleaseSpec)) time.Time {
	c.t.Helper()
	c.submit(id, [][]string{{"h1"}, {"h2", "h3"}}, func(sp *v1.ReleaseSpec) {
		sp.PostRollout = &v1.PostRolloutSpec{WatchMs: time.Hour.Milliseconds(), KeepOld: "hot"}
		if tweak != nil {
			tweak(sp)
		}
	})
	c.settle(id)
	c.healthyAll(id, 0)
	c.bakeThrough(id, 0)
	c.healthyAll(id, 1)
	c.bakeThrough(id, 1)
	c.wantRelease(id, watchingState)
	until := time.Unix(0, c.release(id).GetWatchUntilUnixNano())
	if want := c.now.Add(time.Hour); !until.Equal(want) {
		c.t.Fatalf("watch_until %s, want %s", until, want)
	}
	if len(c.finalizes) != 0 {
		c.t.Fatalf("finalize ordered at the start of the watch: %v", c.finalizes)
	}
	return until
}

// everyHostOrdered checks that each of the watched release's three hosts
// got one order, reports them all in state st, and wants the release
// to end in want.
func (c *cluster) everyHostOrdered(id, what string, orders []string, st v1.AssignmentState, want v1.ReleaseState) {
	c.t.Helper()
	if len(orders) != 3 {
		c.t.Fatalf("%s orders %v, want one per host", what, orders)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		c.report(h, st)
	}
	c.settle(id)
	c.wantRelease(id, want)
}

// The window passes with no failure: the hosts are finalized (their old
// slots stopped) only then, and the release succeeds with watch_ended.
func TestWatchEndsInFinalize(t *testing.T) {
	c := newCluster(t, sixHosts)
	until := c.watched("r", nil)
	c.advance(59 * time.Minute)
	c.settle("r")
	c.wantRelease("r", watchingState)
	if len(c.finalizes) != 0 {
		t.Fatalf("finalize ordered inside the window: %v", c.finalizes)
	}
	c.now = until
	c.settle("r")
	c.everyHostOrdered("r", "finalize", c.finalizes, finalized, succeeded)
	if len(c.events("r", "release.watching")) != 1 || len(c.events("r", "release.watch_ended")) != 1 {
		t.Fatalf("events:\n%s", c.dumpEvents("r"))
	}
	// The success carries the watch's last reading.
	var last *v1.Event
	for _, e := range c.events("r", "gate.passed") {
		if e.GetEvidence()["gate"] == "max_failed_hosts" {
			last = e
		}
	}
	if last == nil || last.GetTimeUnixNano() < until.UnixNano() || last.GetEvidence()["value"] != "0" {
		t.Fatalf("no final max_failed_hosts reading at the window's end:\n%s", c.dumpEvents("r"))
	}
}

// A host whose new slot fails its health checks (in its heartbeats) for
// three check intervals rolls every host back; one failing heartbeat does
// not.
func TestWatchHealthFailureRollsBack(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.watched("r", func(sp *v1.ReleaseSpec) {
		sp.Health.Checks = []*v1.HealthCheck{{Kind: "http", IntervalMs: 2000}}
	})
	c.advance(30 * time.Second)
	c.hbs["h2"].Slots[0].Healthy, c.hbs["h2"].Slots[0].LastCheckError = false, "GET /healthz: 503"
	c.settle("r")
	c.advance(5 * time.Second) // < 3 × 2s
	c.settle("r")
	c.wantRelease("r", watchingState)
	c.advance(2 * time.Second)
	c.settle("r")
	c.wantRelease("r", rollingBack)
	r := c.release("r")
	if !strings.Contains(r.GetReason(), "post_rollout watch") {
		t.Fatalf("reason %q\n%s", r.GetReason(), c.dumpEvents("r"))
	}
	var gate *v1.Event
	for _, e := range c.events("r", "gate.failed") {
		if e.GetEvidence()["gate"] == "max_failed_hosts" {
			gate = e
		}
	}
	if gate == nil || !strings.Contains(gate.GetEvidence()["host.h2"], "503") {
		t.Fatalf("no max_failed_hosts gate.failed naming h2:\n%s", c.dumpEvents("r"))
	}
	if len(c.reverts) != 3 {
		t.Fatalf("revert orders %v, want every host", c.reverts)
	}
}

// A failure in the window's last stretch, read at its end, still rolls
// the release back: no host is finalized.
func TestWatchFailureReadAtTheEndRollsBack(t *testing.T) {
	c := newCluster(t, sixHosts)
	until := c.watched("r", nil)
	c.now = until.Add(-time.Second)
	c.report("h3", failed)
	c.now = until
	c.settle("r")
	if len(c.finalizes) != 0 {
		t.Fatalf("finalize ordered after a failure in the window: %v", c.finalizes)
	}
	if len(c.events("r", "release.rolling_back")) != 1 || len(c.events("r", "release.watch_ended")) != 0 {
		t.Fatalf("events:\n%s", c.dumpEvents("r"))
	}
}

// A host the agent reports failed during the window fails the watch;
// one that failed during the phases (within budget) does not.
func TestWatchCountsOnlyFailuresInTheWindow(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(sp *v1.ReleaseSpec) {
		sp.PostRollout = &v1.PostRolloutSpec{WatchMs: time.Hour.Milliseconds(), KeepOld: "hot"}
		sp.Gates.MaxFailedHosts = &v1.Quantity{Value: 1}
	})
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.settle("r")
	c.report("h2", healthy)
	c.report("h3", failed) // within max_failed_hosts = 1
	c.settle("r")
	c.bakeThrough("r", 1)
	c.wantRelease("r", watchingState)
	c.advance(time.Minute)
	c.settle("r")
	c.wantRelease("r", watchingState)
	// h2 fails in the window: one failure, within the budget of 1 too.
	c.report("h2", failed)
	c.settle("r")
	c.wantRelease("r", watchingState)
	c.report("h1", failed)
	c.settle("r")
	// The fake's failed hosts never switched (their heartbeats show
	// the old version), so the rollback has nothing to revert and ends.
	c.wantRelease("r", rolledBack)
	rb := c.events("r", "release.rolling_back")
	if len(rb) != 1 || !strings.Contains(rb[0].GetMessage(), "max_failed_hosts: 2 of 2 > allowed 1") {
		t.Fatalf("events:\n%s", c.dumpEvents("r"))
	}
}

// An operator's rollback inside the window reverts every host.
func TestWatchRollbackByOperator(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.watched("r", nil)
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r",
		State: rollingBack, Reason: "operator", Actor: "alice", CurrentPhase: -1})
	c.settle("r")
	c.everyHostOrdered("r", "revert", c.reverts, reverted, rolledBack)
}

// A new leader (a new orchestrator on the same state) continues the same
// window: it neither ends it early nor restarts it.
func TestWatchResumesOnANewLeader(t *testing.T) {
	c := newCluster(t, sixHosts)
	until := c.watched("r", nil)
	c.advance(10 * time.Minute)
	c.settle("r")
	c.o.ForgetForTest()
	c.settle("r")
	c.wantRelease("r", watchingState)
	if got := time.Unix(0, c.release("r").GetWatchUntilUnixNano()); !got.Equal(until) {
		t.Fatalf("watch_until %s after the new leader, want %s", got, until)
	}
	c.now = until
	c.settle("r")
	if len(c.finalizes) != 3 {
		t.Fatalf("finalize orders at the window's end: %v", c.finalizes)
	}
}
