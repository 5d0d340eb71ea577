package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/deploy/rollout"
	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

var threeHosts = map[string]string{"h1": "a", "h2": "a", "h3": "b"}

// facts records in raft the version the host's active slot runs, as the
// agent's heartbeat facts do.
func (c *cluster) facts(host, version string) {
	c.t.Helper()
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: []*v1.Host{{Id: host,
		Apps: []*v1.SlotFacts{{App: "api", Active: v1.Slot_SLOT_BLUE, BlueVersion: version}}}}})
}

// rolloutWithIsolatedH3 runs release r (version 2) over h1, h2, h3 with
// max_unreachable = 1; h3 reverts isolated mid-bake; the release
// succeeds on h1 and h2.
func rolloutWithIsolatedH3(t *testing.T, converge string) *cluster {
	c := newCluster(t, threeHosts)
	for h := range threeHosts {
		c.facts(h, "1")
	}
	c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(s *v1.ReleaseSpec) {
		s.Gates.MaxUnreachable = &v1.Quantity{Value: 1}
		s.Converge = converge
	})
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.healthyAll("r", 1)
	c.report("h3", isolated)
	c.settle("r")
	c.bakeThrough("r", 1)
	c.report("h1", finalized)
	c.report("h2", finalized)
	c.settle("r")
	c.wantRelease("r", succeeded)
	c.facts("h1", "2")
	c.facts("h2", "2")
	return c
}

// driveConvergence takes a one-host-per-phase release through its phases
// with every host healthy, then finalized.
func (c *cluster) driveConvergence(id string) {
	c.t.Helper()
	c.settle(id)
	for i := range c.release(id).GetPhases() {
		c.healthyAll(id, i)
		c.bakeThrough(id, i)
	}
	for _, p := range c.release(id).GetPhases() {
		c.report(p.GetHosts()[0], finalized)
		c.facts(p.GetHosts()[0], "2")
	}
	c.settle(id)
	c.wantRelease(id, succeeded)
}

func TestDriftedHostsAndManualConverge(t *testing.T) {
	c := rolloutWithIsolatedH3(t, "")
	c.advance(time.Minute)
	// h4 joins after the release: drifted too, but not connected yet.
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: []*v1.Host{{Id: "h4", Cell: "b"}}})
	ds := drift.Hosts(c.state(), "api")
	if len(ds) != 2 || ds[0].GetHost() != "h3" || ds[1].GetHost() != "h4" {
		t.Fatalf("drifted = %v", ds)
	}
	if d := ds[0]; d.GetHasVersion() != "1" || d.GetWantsVersion() != "2" || d.GetReleaseId() != "r" ||
		!strings.Contains(d.GetReason(), "reverted on its own after losing contact") {
		t.Fatalf("h3 drift = %v", d)
	}
	if d := ds[1]; d.GetHasVersion() != "" || !strings.Contains(d.GetReason(), "after release r was planned") {
		t.Fatalf("h4 drift = %v", d)
	}
	// Manual (the default): nothing happens on its own.
	ctx := context.Background()
	for range 3 {
		if err := c.o.ConvergeOnceForTest(ctx); err != nil {
			t.Fatal(err)
		}
		c.advance(time.Hour)
	}
	if n := len(c.state().Releases("api")); n != 1 {
		t.Fatalf("%d releases with converge = manual, want 1", n)
	}
	rel, skipped, err := c.o.Converge(ctx, "api", "alice", "operator asked")
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0].GetHost() != "h4" {
		t.Fatalf("skipped %v, want h4 (not connected)", skipped)
	}
	if rel.GetId() != "r-converge-1" || rel.GetConvergeOf() != "r" || rel.GetState() != running || len(rel.GetPhases()) != 1 ||
		rel.GetPhases()[0].GetHosts()[0] != "h3" || rel.GetSpec().GetVersion() != "2" || rel.GetCreatedBy() != "alice" {
		t.Fatalf("convergence release %v", rel)
	}
	ce := c.events(rel.GetId(), "release.converge")
	if len(ce) != 1 || ce[0].GetEvidence()["converges"] != "r" || ce[0].GetEvidence()["hosts"] != "h3" || ce[0].GetActor() != "alice" ||
		!strings.Contains(ce[0].GetEvidence()["host.h3"], "reverted on its own") {
		t.Fatalf("release.converge events:\n%s", c.dumpEvents(rel.GetId()))
	}
	// A second convergence waits for the first.
	if _, _, err := c.o.Converge(ctx, "api", "alice", "again"); err == nil || !strings.Contains(err.Error(), "r-converge-1") {
		t.Fatalf("second converge: %v", err)
	}
	c.driveConvergence(rel.GetId())
	ds = drift.Hosts(c.state(), "api")
	if len(ds) != 1 || ds[0].GetHost() != "h4" || ds[0].GetReleaseId() != "r-converge-1" || !strings.Contains(ds[0].GetReason(), "after release r was planned") {
		t.Fatalf("drifted after convergence = %v", ds)
	}
	c.connected["h4"] = true
	rel, _, err = c.o.Converge(ctx, "api", "alice", "h4 is up")
	if err != nil {
		t.Fatal(err)
	}
	if rel.GetId() != "r-converge-2" || rel.GetConvergeOf() != "r" {
		t.Fatalf("second convergence %v", rel)
	}
	c.driveConvergence(rel.GetId())
	if ds := drift.Hosts(c.state(), "api"); len(ds) != 0 {
		t.Fatalf("still drifted: %v", ds)
	}
	if _, _, err := c.o.Converge(ctx, "api", "alice", "nothing left"); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Fatalf("converge with nothing drifted: %v", err)
	}
}

// With converge = "auto" the leader converges a drifted host once it has
// stayed connected, one host per release; a host whose convergence fails
// is retried after a backoff and given up after ConvergeAttempts; a
// rolled-back convergence leaves the desired release as it was; nothing
// starts during a freeze.
func TestAutoConvergeBacksOffAndGivesUp(t *testing.T) {
	c := rolloutWithIsolatedH3(t, "auto")
	ctx := context.Background()
	round := func() {
		t.Helper()
		if err := c.o.ConvergeOnceForTest(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nReleases := func() int { return len(c.state().Releases("api")) }
	// A freeze holds it.
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: true, Reason: "holiday", Actor: "test"})
	round()
	c.advance(time.Minute)
	round()
	if nReleases() != 1 {
		t.Fatalf("a convergence started during a freeze")
	}
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: false, Actor: "test"})
	// A host that just came back waits UnreachableAfter first.
	round()
	if nReleases() != 1 {
		t.Fatalf("converged a host that had not stayed connected")
	}
	c.advance(11 * time.Second)
	round()
	if nReleases() != 2 {
		t.Fatalf("%d releases, want a convergence", nReleases())
	}
	for attempt := 1; attempt <= 3; attempt++ {
		id := fmt.Sprintf("r-converge-%d", attempt)
		rel := c.release(id)
		if rel.GetState() != running || rel.GetCreatedBy() != rollout.ConvergeActor {
			t.Fatalf("attempt %d: %v", attempt, rel)
		}
		c.settle(id)
		c.report("h3", failed) // fails before switching
		c.settle(id)
		c.settle(id)
		c.wantRelease(id, rolledBack)
		if d := drift.Desired(c.state(), "api"); d.GetId() != "r" {
			t.Fatalf("desired after a rolled-back convergence = %s", d.GetId())
		}
		// Not retried at once (a hot loop).
		round()
		if nReleases() != 1+attempt {
			t.Fatalf("attempt %d retried at once", attempt)
		}
		c.advance(10*time.Minute + time.Second) // past ConvergeBackoffMax
		round()
		want := 2 + attempt
		if attempt == 3 {
			want = 4 // given up
		}
		if nReleases() != want {
			t.Fatalf("after attempt %d: %d releases, want %d", attempt, nReleases(), want)
		}
	}
	ds := drift.Hosts(c.state(), "api")
	if len(ds) != 1 || ds[0].GetHost() != "h3" || !strings.Contains(ds[0].GetReason(), "r-converge-3") {
		t.Fatalf("drifted after giving up = %v", ds)
	}
}
