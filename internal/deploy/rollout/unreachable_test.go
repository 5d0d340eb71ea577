package rollout_test

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const isolated = v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED

// gateEvidence returns the evidence of the last event of kind whose gate
// is gate ("" for any).
func (c *cluster) gateEvidence(id, kind, gate string) map[string]string {
	c.t.Helper()
	var out map[string]string
	for _, e := range c.events(id, kind) {
		if gate == "" || e.GetEvidence()["gate"] == gate {
			out = e.GetEvidence()
		}
	}
	if out == nil {
		c.t.Fatalf("no %s event for gate %q\n%s", kind, gate, c.dumpEvents(id))
	}
	return out
}

// A host that reverted on its own because it was cut off mid-bake is
// unreachable, not failed: with max_failed_hosts = 0 and max_unreachable
// = 1 the release goes on and succeeds on the others; with
// max_unreachable = 0 the phase fails on max_unreachable, and the
// evidence names the host, that it reverted isolated, and when.
func TestIsolatedRevertCountsAgainstMaxUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name           string
		maxUnreachable float64
	}{{"within budget", 1}, {"over budget", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, sixHosts)
			c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(s *v1.ReleaseSpec) {
				s.Gates.MaxUnreachable = &v1.Quantity{Value: tc.maxUnreachable}
			})
			c.settle("r")
			c.healthyAll("r", 0)
			c.bakeThrough("r", 0)
			c.healthyAll("r", 1)
			c.wantPhase("r", 1, baking)
			// h3 loses every coordinator mid-bake, reverts on its own,
			// and reports it when the link heals.
			c.advance(20 * time.Second)
			revertedAt := c.now
			c.report("h3", isolated)
			c.settle("r")
			if hf := c.events("r", "host.failed"); len(hf) != 0 {
				t.Fatalf("host.failed written for an isolated revert:\n%s", c.dumpEvents("r"))
			}
			hu := c.events("r", "host.unreachable")
			if len(hu) != 1 || hu[0].GetHost() != "h3" || hu[0].GetEvidence()["reverted_isolated_at"] != revertedAt.UTC().Format(time.RFC3339Nano) {
				t.Fatalf("host.unreachable events:\n%s", c.dumpEvents("r"))
			}
			if tc.maxUnreachable == 0 {
				c.wantPhase("r", 1, phFailed)
				gf := c.events("r", "gate.failed")
				if len(gf) != 1 {
					t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
				}
				ev := gf[0].GetEvidence()
				if ev["gate"] != "max_unreachable" || ev["hosts"] != "h3" || ev["reverted_isolated"] != "h3" ||
					ev["host.h3.reverted_isolated_at"] != revertedAt.UTC().Format(time.RFC3339Nano) ||
					!strings.Contains(ev["host.h3"], "reverted on its own") {
					t.Fatalf("gate.failed evidence %v\n%s", ev, c.dumpEvents("r"))
				}
				if fe := c.gateEvidence("r", "gate.passed", "max_failed_hosts"); fe["value"] != "0" {
					t.Fatalf("max_failed_hosts reading %v", fe)
				}
				c.wantRelease("r", rollingBack)
				return
			}
			c.wantPhase("r", 1, baking)
			c.bakeThrough("r", 1)
			c.wantPhase("r", 1, verified)
			ue := c.gateEvidence("r", "gate.passed", "max_unreachable")
			if ue["hosts"] != "h3" || ue["reverted_isolated"] != "h3" || ue["value"] != "1" {
				t.Fatalf("max_unreachable reading %v", ue)
			}
			if fe := c.gateEvidence("r", "gate.passed", "max_failed_hosts"); fe["value"] != "0" {
				t.Fatalf("max_failed_hosts reading %v", fe)
			}
			c.report("h1", finalized)
			c.report("h2", finalized)
			c.settle("r")
			c.wantRelease("r", succeeded)
			if r := c.release("r").GetReason(); !strings.Contains(r, "1 unreachable") {
				t.Fatalf("release reason %q", r)
			}
			if len(c.reverts) != 0 {
				t.Fatalf("reverts ordered to %v", c.reverts)
			}
		})
	}
}

// A host cut off before it became healthy, and still unreachable at its
// deadline, is unreachable too: its assignment ends (so it does not
// resume the release on its own when the link heals) and it counts
// against max_unreachable, also for a new leader reading the state.
func TestHostCutOffBeforeHealthyIsUnreachable(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, func(s *v1.ReleaseSpec) {
		s.Gates.MaxUnreachable = &v1.Quantity{Value: 1}
	})
	c.settle("r")
	c.report("h1", healthy)
	c.report("h2", staging)
	c.connected["h2"] = false
	c.advance(60*time.Second + time.Second + 6*time.Second) // past healthy_deadline + min_healthy_time + grace
	c.settle("r")
	a := c.state().Assignment("h2", "api")
	if a.GetState() != failed || !strings.HasPrefix(a.GetReason(), "orchestrator: unreachable: ") {
		t.Fatalf("h2 = %v", a)
	}
	if hu := c.events("r", "host.unreachable"); len(hu) != 1 || hu[0].GetHost() != "h2" {
		t.Fatalf("host.unreachable events:\n%s", c.dumpEvents("r"))
	}
	if hf := c.events("r", "host.failed"); len(hf) != 0 {
		t.Fatalf("host.failed:\n%s", c.dumpEvents("r"))
	}
	c.wantPhase("r", 0, baking)
	// Once the link heals the host still counts as unreachable: the
	// reason is in raft, so any leader reads it the same way.
	c.connected["h2"] = true
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, verified)
	if ue := c.gateEvidence("r", "gate.passed", "max_unreachable"); ue["hosts"] != "h2" {
		t.Fatalf("max_unreachable reading %v", ue)
	}
}

// Over the budget, a host unreachable at its deadline fails the phase on
// max_unreachable, not on max_failed_hosts.
func TestHostCutOffOverBudgetFailsOnMaxUnreachable(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.report("h1", healthy)
	c.report("h2", staging)
	c.connected["h2"] = false
	c.advance(60*time.Second + time.Second + 6*time.Second)
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	gf := c.events("r", "gate.failed")
	if len(gf) != 1 || gf[0].GetEvidence()["gate"] != "max_unreachable" || gf[0].GetEvidence()["hosts"] != "h2" {
		t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
	}
}

// A host cut off shortly before its phase's bake deadline, while the
// leader still holds it healthy, is in doubt: it may be reverting on its
// own. The phase is not verified on a guess; once the host has been
// silent for UnreachableAfter it counts against max_unreachable, with a
// host.unreachable event, and the phase goes on within the budget. The
// same whether the leader sees the session end or, as on a real cut link,
// the session stays open and silent.
func TestHostCutOffAtBakeDeadlineIsNotVerifiedOnAGuess(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(c *cluster)
	}{
		{"session closed", func(c *cluster) { c.connected["h3"] = false }},
		// Open and silent until the coordinator's silence timeout
		// closes the session, 1 s after the deadline.
		{"session open and silent", func(c *cluster) { c.lastContact["h3"] = c.now }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, sixHosts)
			c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(s *v1.ReleaseSpec) {
				s.Gates.MaxUnreachable = &v1.Quantity{Value: 1}
			})
			c.settle("r")
			c.healthyAll("r", 0)
			c.bakeThrough("r", 0)
			c.healthyAll("r", 1)
			c.wantPhase("r", 1, baking)
			// h3 is cut 6 s before the deadline.
			deadline := time.Unix(0, c.phase("r", 1).GetBakeDeadlineUnixNano())
			c.now = deadline.Add(-6 * time.Second)
			c.settle("r")
			tc.cut(c)
			c.bakeThrough("r", 1)
			c.wantPhase("r", 1, baking)
			if hu := c.events("r", "host.unreachable"); len(hu) != 0 {
				t.Fatalf("host.unreachable before UnreachableAfter:\n%s", c.dumpEvents("r"))
			}
			c.advance(time.Second)
			c.settle("r")
			c.wantPhase("r", 1, baking)
			c.connected["h3"] = false
			c.settle("r")
			c.advance(11 * time.Second) // past UnreachableAfter (10 s) since the session ended
			c.settle("r")
			c.wantPhase("r", 1, verified)
			hu := c.events("r", "host.unreachable")
			if len(hu) != 1 || hu[0].GetHost() != "h3" || hu[0].GetEvidence()["last_state"] != "healthy" {
				t.Fatalf("host.unreachable events:\n%s", c.dumpEvents("r"))
			}
			if ue := c.gateEvidence("r", "gate.passed", "max_unreachable"); ue["hosts"] != "h3" || ue["value"] != "1" {
				t.Fatalf("max_unreachable reading %v", ue)
			}
			if hf := c.events("r", "host.failed"); len(hf) != 0 {
				t.Fatalf("host.failed:\n%s", c.dumpEvents("r"))
			}
			// The release does not wait FinalizeTimeout for the host
			// it cannot reach, and counts it unreachable.
			c.report("h1", finalized)
			c.report("h2", finalized)
			c.settle("r")
			c.wantRelease("r", succeeded)
			if r := c.release("r").GetReason(); !strings.Contains(r, "2 host(s) finalized, 0 failed and 1 unreachable") || strings.Contains(r, "not finalized") {
				t.Fatalf("release reason %q", r)
			}
		})
	}
}

// A new leader does not know how long a host without a session has been
// gone: at the host's deadline it neither calls it failed on a guess nor
// waits forever; UnreachableAfter into its leadership the host counts as
// unreachable (a host powered off during the rollout, with a leader
// change before its deadline, failed the release on max_failed_hosts).
func TestNewLeaderDoesNotFailAHostItNeverSaw(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, func(s *v1.ReleaseSpec) {
		s.Gates.MaxUnreachable = &v1.Quantity{Value: 1}
	})
	c.connected["h2"] = false // powered off before its assignment
	c.settle("r")
	c.report("h1", healthy)
	c.advance(60*time.Second + time.Second + 5*time.Second - 2*time.Second) // 2 s before the deadline
	c.o.ForgetForTest()                                                     // a new leader
	c.advance(3 * time.Second)                                              // past the deadline
	c.settle("r")
	if a := c.state().Assignment("h2", "api"); a.GetState() == failed {
		t.Fatalf("h2 decided by a young leader: %v\n%s", a, c.dumpEvents("r"))
	}
	if hf := c.events("r", "host.failed"); len(hf) != 0 {
		t.Fatalf("host.failed:\n%s", c.dumpEvents("r"))
	}
	c.wantPhase("r", 0, deploying)
	c.advance(8 * time.Second) // UnreachableAfter into the leadership
	c.settle("r")
	a := c.state().Assignment("h2", "api")
	if a.GetState() != failed || !strings.HasPrefix(a.GetReason(), "orchestrator: unreachable: ") {
		t.Fatalf("h2 = %v\n%s", a, c.dumpEvents("r"))
	}
	if hu := c.events("r", "host.unreachable"); len(hu) != 1 || hu[0].GetHost() != "h2" {
		t.Fatalf("host.unreachable:\n%s", c.dumpEvents("r"))
	}
	c.wantPhase("r", 0, baking)
}
