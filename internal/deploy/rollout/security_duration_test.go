package rollout_test

import (
	"math"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/sattime"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// submitBake stores and starts a one-phase release on h1 whose phase bakes
// for bakeMs, as a plan in raft would hold it (specs are capped at
// validation, but entries written before the cap, or by a buggy writer,
// still replay).
func (c *cluster) submitBake(id string, bakeMs int64) {
	c.t.Helper()
	sp := &v1.ReleaseSpec{Name: id, App: "api", Version: "2",
		Health:   &v1.HealthSpec{MinHealthyTimeMs: 1000, HealthyDeadlineMs: 60_000},
		Gates:    &v1.GatesSpec{},
		Rollback: &v1.RollbackSpec{OnFailure: "all"},
	}
	ps := []*v1.Phase{{Index: 0, Hosts: []string{"h1"}, Cells: []string{"a"}, BakeMs: bakeMs}}
	c.must(raftfsm.SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: c.now.UnixNano(), Actor: "test",
		Release: &v1.Release{Id: id, Spec: sp, Phases: ps}})
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: id,
		State: v1.ReleaseState_RELEASE_STATE_RUNNING, Actor: "test", CurrentPhase: -1})
}

// Issue 11 item 6: bake.first = "2562047h" logged a deadline in 2319 and
// the bake "passed" the same second, because the deadline's UnixNano
// wrapped. Now the deadline saturates at the last representable instant
// and the bake holds.
func TestSecurityDurationOverflowBakeDeadline(t *testing.T) {
	huge := (2562047 * time.Hour).Milliseconds()
	for _, bakeMs := range []int64{huge, math.MaxInt64} {
		c := newCluster(t, sixHosts)
		c.submitBake("r", bakeMs)
		c.settle("r")
		c.healthyAll("r", 0)
		c.wantPhase("r", 0, baking)
		if got, want := c.phase("r", 0).GetBakeDeadlineUnixNano(), sattime.Latest.UnixNano(); got != want {
			t.Fatalf("bake %dms: deadline %s, want it saturated at %s", bakeMs,
				time.Unix(0, got).UTC(), sattime.Latest)
		}
		c.advance(365 * 24 * time.Hour)
		c.settle("r")
		c.wantPhase("r", 0, baking)
	}
}

// At the longest bake a spec may ask for, the deadline is exact and the
// bake passes when it is reached, not before.
func TestSecurityDurationOverflowBakeAtCap(t *testing.T) {
	const bake = 30 * 24 * time.Hour // spec.MaxBakeDuration
	c := newCluster(t, sixHosts)
	c.submitBake("r", bake.Milliseconds())
	c.settle("r")
	c.healthyAll("r", 0)
	started := c.now
	if got, want := c.phase("r", 0).GetBakeDeadlineUnixNano(), started.Add(bake).UnixNano(); got != want {
		t.Fatalf("deadline %s, want %s", time.Unix(0, got).UTC(), started.Add(bake).UTC())
	}
	c.advance(bake - time.Second)
	c.settle("r")
	c.wantPhase("r", 0, baking)
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, verified)
}
