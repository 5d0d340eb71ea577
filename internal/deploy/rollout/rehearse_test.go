package rollout_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// rehearsed runs a release whose phase 0 (h1, h2) rehearses its rollback
// up to the point where both hosts were ordered to rehearse.
func rehearsed(t *testing.T) *cluster {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}, {"h3"}}, func(sp *v1.ReleaseSpec) {
		sp.Rollback.Rehearse, sp.Rollback.MaxRollbackTimeMs = true, 10_000
	})
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	// Gates passed; the phase waits for the rehearsals. The gate readings
	// are not written yet (only host_health, at the start of the bake).
	c.wantPhase("r", 0, baking)
	if len(c.rehearseOrders) != 2 || len(c.events("r", "gate.passed")) != 1 {
		t.Fatalf("rehearse orders %v, gate events %d\n%s", c.rehearseOrders, len(c.events("r", "gate.passed")), c.dumpEvents("r"))
	}
	return c
}

func (c *cluster) rehearsal(host string, ok bool, ms int64, reason string) {
	gen := c.state().Assignment(host, "api").GetGeneration()
	c.o.ObserveRehearsal(host, &v1.RehearsalResult{App: "api", Generation: gen, Ok: ok, RollbackMs: ms, Reason: reason,
		OldVersion: "1", NewVersion: "2", RolledForward: true})
}

// Every verdict the leader can reach, each recorded with the phase
// decision, one phase.rehearsed event per host.
func TestRehearsalVerdicts(t *testing.T) {
	cases := []struct {
		name      string
		h1, h2    func(c *cluster)
		wait      time.Duration // after the results, before settling
		phase     v1.PhaseState
		verdicts  map[string]string
		inReason  string
		rehearsed int
	}{
		// Both roll back in time: verified, the release goes on.
		{"passed", func(c *cluster) { c.rehearsal("h1", true, 800, "") }, func(c *cluster) { c.rehearsal("h2", true, 1200, "") },
			0, verified, map[string]string{"h1": "passed", "h2": "passed"}, "slowest 1.2s", 2},
		// One is slower than max_rollback_time: the phase fails.
		{"too slow", func(c *cluster) { c.rehearsal("h1", true, 800, "") }, func(c *cluster) { c.rehearsal("h2", true, 12_000, "") },
			0, phFailed, map[string]string{"h1": "passed", "h2": "too_slow"}, "h2: rollback took 12s, over max_rollback_time 10s", 2},
		// One could not roll back: the agent's reason fails the phase.
		{"failed", func(c *cluster) { c.rehearsal("h1", false, 0, "old slot blue did not start: port taken") }, func(c *cluster) { c.rehearsal("h2", true, 500, "") },
			0, phFailed, map[string]string{"h1": "failed", "h2": "passed"}, "h1: old slot blue did not start: port taken", 2},
		// One never answers: after the bounded wait the phase fails.
		{"no result", func(c *cluster) { c.rehearsal("h1", true, 500, "") }, func(*cluster) {},
			10 * time.Minute, phFailed, map[string]string{"h1": "passed", "h2": "no_result"}, "h2: no rehearsal result within", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rehearsed(t)
			tc.h1(c)
			c.settle("r")
			c.wantPhase("r", 0, baking) // h2 outstanding
			tc.h2(c)
			c.advance(tc.wait)
			c.settle("r")
			p := c.phase("r", 0)
			if p.GetState() != tc.phase && !(tc.phase == verified && c.release("r").GetCurrentPhase() == 1) {
				t.Fatalf("phase 0 is %s (%s)\n%s", p.GetState(), p.GetReason(), c.dumpEvents("r"))
			}
			if !strings.Contains(p.GetReason(), tc.inReason) {
				t.Fatalf("phase 0 reason %q, want it to contain %q", p.GetReason(), tc.inReason)
			}
			evs := c.events("r", "phase.rehearsed")
			if len(evs) != tc.rehearsed {
				t.Fatalf("%d phase.rehearsed events\n%s", len(evs), c.dumpEvents("r"))
			}
			for _, e := range evs {
				if got := e.GetEvidence()["verdict"]; got != tc.verdicts[e.GetHost()] || e.GetEvidence()["max_rollback_time"] != "10s" {
					t.Errorf("%s: evidence %v, want verdict %s", e.GetHost(), e.GetEvidence(), tc.verdicts[e.GetHost()])
				}
			}
			if tc.phase == phFailed {
				c.wantRelease("r", rollingBack)
				if c.state().Assignment("h3", "api") != nil {
					t.Fatal("h3 (phase 1) assigned after a failed rehearsal")
				}
			}
		})
	}
}

// A host without a result is asked again (the order may have been lost),
// but not on every step.
func TestRehearsalOrderIsResent(t *testing.T) {
	c := rehearsed(t)
	c.settle("r")
	if len(c.rehearseOrders) != 2 {
		t.Fatalf("orders resent at once: %v", c.rehearseOrders)
	}
	c.advance(6 * time.Second)
	c.settle("r")
	if len(c.rehearseOrders) != 4 {
		t.Fatalf("orders after 6s: %v, want each host asked again", c.rehearseOrders)
	}
}

// An agent's reason is evidence in raft: it is bounded and stays valid
// UTF-8 however it is cut.
func TestRehearsalReasonIsBounded(t *testing.T) {
	c := rehearsed(t)
	c.rehearsal("h1", false, 0, strings.Repeat("é", 10_000))
	c.rehearsal("h2", true, 500, "")
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	for _, e := range c.events("r", "phase.rehearsed") {
		if e.GetHost() != "h1" {
			continue
		}
		why := e.GetEvidence()["reason"]
		if len(why) > 2100 || !utf8.ValidString(why) || !strings.Contains(why, "bytes cut") {
			t.Fatalf("reason of %d bytes (valid UTF-8: %v): %.80q…", len(why), utf8.ValidString(why), why)
		}
		return
	}
	t.Fatalf("no phase.rehearsed event for h1\n%s", c.dumpEvents("r"))
}
