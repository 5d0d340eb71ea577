package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// weekendIn is a weekend calendar (Friday 18:00 Berlin time for 62 h)
// scoped to cells; the test cluster's clock starts on Sunday 2026-03-01.
func weekendIn(cells ...string) *v1.AddFreezeCommand {
	return &v1.AddFreezeCommand{Window: &v1.FreezeWindow{Id: "weekend", Cron: "0 18 * * FRI", DurationMs: (62 * time.Hour).Milliseconds(),
		Timezone: "Europe/Berlin", Reason: "no changes at the weekend", CreatedBy: "ops", Cells: cells}}
}

// Issue 18 item 4: a calendar freeze holds a phase whose cells it covers
// (one phase.held event naming the window and its end in its zone and in
// UTC); phases outside its scope run; once the occurrence ends the held
// phase starts, recording what held it.
func TestCalendarFreezeHoldsThePhase(t *testing.T) {
	c := newCluster(t, sixHosts)
	cmd := weekendIn("b")
	cmd.TimeUnixNano = c.now.UnixNano()
	c.must(raftfsm.AddFreeze, cmd)
	c.submit("r", [][]string{{"h1"}, {"h3"}}, nil)
	c.settle("r")
	c.wantPhase("r", 0, deploying) // cell a: not in the window's scope
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	for range 5 {
		c.advance(time.Minute)
		c.settle("r")
	}
	c.wantPhase("r", 1, pending)
	held := c.events("r", "phase.held")
	const want = `freeze window "weekend" (cron "0 18 * * FRI" for 62h0m0s in Europe/Berlin) cells b until 2026-03-02T08:00:00+01:00 (2026-03-02T07:00:00Z): no changes at the weekend`
	if len(held) != 1 || !strings.Contains(held[0].GetMessage(), want) || held[0].GetPhase() != 1 {
		t.Fatalf("phase.held events (want exactly one naming the window):\n%s", c.dumpEvents("r"))
	}
	// Monday 07:00 UTC: the occurrence is over.
	c.now = time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	c.settle("r")
	c.wantPhase("r", 1, deploying)
	started := c.events("r", "phase.started")
	if last := started[len(started)-1]; !strings.Contains(last.GetEvidence()["held_by"], `freeze window "weekend"`) {
		t.Fatalf("phase.started does not say what held it: %v", last)
	}
}

// An admin's freeze override (OverrideFreeze) lets the release start its
// phase inside the window; the phase.started evidence names the override.
// The global freeze is not overridden.
func TestFreezeOverrideStartsThePhase(t *testing.T) {
	c := newCluster(t, sixHosts)
	cmd := weekendIn()
	cmd.TimeUnixNano = c.now.UnixNano()
	c.must(raftfsm.AddFreeze, cmd)
	c.submit("r", [][]string{{"h1"}, {"h3"}}, nil)
	c.settle("r")
	c.wantPhase("r", 0, pending)
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: true, Reason: "incident", Actor: "ops"})
	c.must(raftfsm.OverrideFreeze, &v1.OverrideFreezeCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", Actor: "admin", Reason: "hotfix INC-7"})
	c.advance(time.Second)
	c.settle("r")
	c.wantPhase("r", 0, pending)
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: false, Actor: "ops"})
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	started := c.events("r", "phase.started")
	if len(started) != 1 || started[0].GetEvidence()["freeze_override"] != "admin: hotfix INC-7" {
		t.Fatalf("phase.started evidence does not name the override:\n%s", c.dumpEvents("r"))
	}
	if ov := c.events("r", "freeze.overridden"); len(ov) != 1 || ov[0].GetActor() != "admin" {
		t.Fatalf("freeze.overridden events:\n%s", c.dumpEvents("r"))
	}
}
