package rollout_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/rollout"
	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const (
	healthy   = v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY
	finalized = v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED
	failed    = v1.AssignmentState_ASSIGNMENT_STATE_FAILED
	staging   = v1.AssignmentState_ASSIGNMENT_STATE_STAGING
	reverted  = v1.AssignmentState_ASSIGNMENT_STATE_REVERTED

	running     = v1.ReleaseState_RELEASE_STATE_RUNNING
	paused      = v1.ReleaseState_RELEASE_STATE_PAUSED
	awaiting    = v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL
	rollingBack = v1.ReleaseState_RELEASE_STATE_ROLLING_BACK
	rolledBack  = v1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	succeeded   = v1.ReleaseState_RELEASE_STATE_SUCCEEDED

	deploying = v1.PhaseState_PHASE_STATE_DEPLOYING
	baking    = v1.PhaseState_PHASE_STATE_BAKING
	verified  = v1.PhaseState_PHASE_STATE_VERIFIED
	phFailed  = v1.PhaseState_PHASE_STATE_FAILED
	pending   = v1.PhaseState_PHASE_STATE_PENDING
)

var sixHosts = map[string]string{"h1": "a", "h2": "a", "h3": "b", "h4": "b", "h5": "c", "h6": "c"}

// healthyAll reports every host of phase i healthy and settles.
func (c *cluster) healthyAll(id string, i int) {
	for _, h := range c.phase(id, i).GetHosts() {
		c.report(h, healthy)
	}
	c.settle(id)
}

// bakeThrough passes phase i's bake deadline and settles.
func (c *cluster) bakeThrough(id string, i int) {
	c.t.Helper()
	c.wantPhase(id, i, baking)
	c.now = time.Unix(0, c.phase(id, i).GetBakeDeadlineUnixNano()).Add(time.Millisecond)
	c.settle(id)
}

func TestPhasesRunInOrderThenFinalize(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2", "h3"}, {"h4", "h5", "h6"}}, nil)
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	if a := c.state().Assignment("h1", "api"); a.GetReleaseId() != "r" || a.GetPhase() != 0 {
		t.Fatalf("h1 assignment = %v", a)
	}
	if c.state().Assignment("h2", "api") != nil {
		t.Fatal("h2 assigned before phase 1")
	}
	c.healthyAll("r", 0)
	c.wantPhase("r", 0, baking)
	p := c.phase("r", 0)
	if got, want := p.GetBakeDeadlineUnixNano(), c.now.Add(60*time.Second).UnixNano(); got != want {
		t.Fatalf("bake deadline %d, want now+60s %d", got, want)
	}
	c.advance(59 * time.Second)
	c.settle("r")
	c.wantPhase("r", 0, baking)
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, verified)
	if !slices.Contains(c.verified, "h1") {
		t.Fatalf("h1 not told its phase is verified: %v", c.verified)
	}
	c.wantPhase("r", 1, deploying)
	if r := c.release("r"); r.GetCurrentPhase() != 1 {
		t.Fatalf("current phase %d", r.GetCurrentPhase())
	}
	c.healthyAll("r", 1)
	c.bakeThrough("r", 1)
	c.healthyAll("r", 2)
	c.bakeThrough("r", 2)
	c.wantPhase("r", 2, verified)
	c.wantRelease("r", running) // finalizing
	if len(c.finalizes) != 6 {
		t.Fatalf("finalize orders %v", c.finalizes)
	}
	for h := range sixHosts {
		c.report(h, finalized)
	}
	c.settle("r")
	c.wantRelease("r", succeeded)
	for _, kind := range []string{"phase.started", "gate.passed", "release.finalizing", "release.succeeded"} {
		if len(c.events("r", kind)) == 0 {
			t.Errorf("no %s event\n%s", kind, c.dumpEvents("r"))
		}
	}
	if n := len(c.events("r", "phase.started")); n != 3 {
		t.Errorf("%d phase.started events, want 3", n)
	}
	// Each host got exactly one generation of this release.
	for h := range sixHosts {
		n := 0
		for _, a := range c.state().ReleaseAssignments("r") {
			if a.GetHost() == h {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s assigned %d times", h, n)
		}
	}
}

func TestNewLeaderKeepsTheStoredBakeDeadline(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	deadline := c.phase("r", 0).GetBakeDeadlineUnixNano()
	c.advance(40 * time.Second)
	// A new leader: no memory, same raft state.
	c.o.ForgetForTest()
	c.settle("r")
	c.wantPhase("r", 0, baking)
	if got := c.phase("r", 0).GetBakeDeadlineUnixNano(); got != deadline {
		t.Fatalf("deadline moved from %d to %d", deadline, got)
	}
	c.advance(19 * time.Second)
	c.settle("r")
	c.wantPhase("r", 0, baking)
	c.advance(2 * time.Second) // 61s after the bake started, not 60s after the failover
	c.settle("r")
	c.wantPhase("r", 0, verified)
	if n := len(c.state().ReleaseAssignments("r")); n != 2 {
		t.Fatalf("%d assignments, want 2 (h1 once, h2 once)", n)
	}
}

func TestFailedHostOverBudgetRollsEverythingBack(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.report("h2", healthy)
	c.report("h3", failed) // failed before switching: the heartbeat says version 1
	c.settle("r")
	c.wantPhase("r", 1, phFailed)
	gf := c.events("r", "gate.failed")
	if len(gf) != 1 || gf[0].GetEvidence()["gate"] != "max_failed_hosts" || gf[0].GetEvidence()["hosts"] != "h3" ||
		gf[0].GetEvidence()["value"] != "1" || gf[0].GetEvidence()["limit"] != "0" {
		t.Fatalf("gate.failed = %v\n%s", gf, c.dumpEvents("r"))
	}
	c.wantRelease("r", rollingBack)
	slices.Sort(c.reverts)
	if !slices.Equal(c.reverts, []string{"h1", "h2"}) {
		t.Fatalf("reverts ordered to %v, want h1 h2 (h3 never switched)", c.reverts)
	}
	if len(c.events("r", "revert.ordered")) != 1 {
		t.Fatalf("revert.ordered events:\n%s", c.dumpEvents("r"))
	}
	c.report("h1", reverted)
	c.settle("r")
	c.wantRelease("r", rollingBack)
	c.report("h2", reverted)
	c.settle("r")
	c.wantRelease("r", rolledBack)
}

func TestRollbackPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		reverts []string
	}{
		// phase: only the failed phase's switched hosts go back; a human decides the rest.
		{"phase", []string{"h2"}},
		// pause: nothing is reverted.
		{"pause", nil},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			c := newCluster(t, sixHosts)
			c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(s *v1.ReleaseSpec) { s.Rollback.OnFailure = tc.policy })
			c.settle("r")
			c.healthyAll("r", 0)
			c.bakeThrough("r", 0)
			c.report("h2", healthy)
			c.report("h3", failed)
			c.settle("r")
			c.wantPhase("r", 1, phFailed)
			c.wantRelease("r", paused)
			if !slices.Equal(c.reverts, tc.reverts) {
				t.Fatalf("reverts %v, want %v", c.reverts, tc.reverts)
			}
			if !strings.Contains(c.release("r").GetReason(), "rollback.on_failure = "+tc.policy) {
				t.Fatalf("reason %q", c.release("r").GetReason())
			}
		})
	}
}

func TestHostNotHealthyInTimeFails(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, func(s *v1.ReleaseSpec) {
		s.Gates.MaxFailedHosts = &v1.Quantity{Value: 50, Percent: true}
	})
	c.settle("r")
	c.report("h1", healthy)
	c.report("h2", staging)
	c.advance(60*time.Second + time.Second + 4*time.Second) // healthy_deadline + min_healthy_time + part of the grace
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	c.advance(2 * time.Second)
	c.settle("r")
	if a := c.state().Assignment("h2", "api"); a.GetState() != failed || !strings.Contains(a.GetReason(), "not healthy within") {
		t.Fatalf("h2 = %v", a)
	}
	if hf := c.events("r", "host.failed"); len(hf) != 1 || hf[0].GetHost() != "h2" {
		t.Fatalf("host.failed events:\n%s", c.dumpEvents("r"))
	}
	// One failure of two is within the 50% budget: the phase bakes.
	c.wantPhase("r", 0, baking)
}

func TestUnreachableHostFailsThePhase(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	c.connected["h2"] = false
	c.advance(5 * time.Second)
	c.settle("r")
	c.wantPhase("r", 0, baking)
	c.advance(6 * time.Second)
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	gf := c.events("r", "gate.failed")
	if len(gf) != 1 || gf[0].GetEvidence()["gate"] != "max_unreachable" || gf[0].GetEvidence()["hosts"] != "h2" {
		t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
	}
}

func TestThresholdGateAtBakeDeadline(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, func(s *v1.ReleaseSpec) { s.Gates.MaxCpuPercent = 90 })
	c.settle("r")
	c.healthyAll("r", 0)
	c.hbs["h2"].Slots[0].CpuPercent = 97.5
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, phFailed)
	gf := c.events("r", "gate.failed")
	if len(gf) != 1 || gf[0].GetEvidence()["gate"] != "max_cpu_percent" || gf[0].GetEvidence()["value"] != "97.5" ||
		gf[0].GetEvidence()["worst_host"] != "h2" || gf[0].GetEvidence()["limit"] != "90" {
		t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
	}
	c.wantRelease("r", rollingBack)
}

// feed sends heartbeats with samples: version's cpu values on each host.
func (c *cluster) feed(hosts []string, version string, cpu func(i int) float64, n int) {
	for i := 0; i < n; i++ {
		for _, h := range hosts {
			c.o.Observe(h, &v1.Heartbeat{
				Slots:   []*v1.SlotMetrics{{App: "api", Version: version}},
				Samples: []*v1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: []float64{cpu(i)}}, {App: "api", Metric: "rss_bytes", Values: []float64{1e8 + float64(i%3)}}},
			}, c.now)
		}
		c.advance(time.Second)
	}
}

func TestBaselineGate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		samples  int
		canaryHi bool
		want     v1.PhaseState
		release  v1.ReleaseState
		kind     string
	}{
		// Too few samples: inconclusive pauses, never passes.
		{"inconclusive", 5, false, baking, paused, "gate.inconclusive"},
		// Same distribution: passes.
		{"similar", 30, false, verified, succeeded, "gate.passed"},
		// Clearly higher CPU on the new version: fails.
		{"worse", 30, true, phFailed, rollingBack, "gate.failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, sixHosts)
			c.submit("r", [][]string{{"h1"}}, func(s *v1.ReleaseSpec) {
				s.Gates.Baseline, s.Gates.BaselineMinSamples = "compare", 20
			})
			c.settle("r")
			c.healthyAll("r", 0)
			c.now = time.Unix(0, c.phase("r", 0).GetBakeDeadlineUnixNano()).Add(-40 * time.Second)
			c.feed([]string{"h1"}, "2", func(i int) float64 {
				if tc.canaryHi {
					return 50 + float64(i%5)
				}
				return 10 + float64(i%5)
			}, tc.samples)
			c.now = c.now.Add(-time.Duration(tc.samples) * time.Second)
			c.feed([]string{"h2"}, "1", func(i int) float64 { return 10 + float64((i+2)%5) }, tc.samples)
			c.bakeThrough("r", 0)
			for h := range sixHosts {
				if a := c.state().Assignment(h, "api"); a != nil && a.GetState() == healthy {
					c.report(h, finalized)
				}
			}
			c.settle("r")
			c.wantPhase("r", 0, tc.want)
			c.wantRelease("r", tc.release)
			evs := c.events("r", tc.kind)
			found := false
			for _, e := range evs {
				if strings.HasPrefix(e.GetEvidence()["gate"], "baseline.") {
					found = true
					if tc.samples >= 20 && (e.GetEvidence()["baseline_hosts"] != "h2" || e.GetEvidence()["baseline_scope"] != "cells") {
						t.Errorf("evidence %v", e.GetEvidence())
					}
				}
			}
			if !found {
				t.Fatalf("no %s baseline event\n%s", tc.kind, c.dumpEvents("r"))
			}
			if tc.release == paused && !strings.Contains(c.release("r").GetReason(), "inconclusive") {
				t.Fatalf("reason %q", c.release("r").GetReason())
			}
		})
	}
}

func TestFreezeHoldsThePhaseStart(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.must(raftfsm.AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: c.now.UnixNano(), Window: &v1.FreezeWindow{
		Id: "w", FromUnixNano: c.now.Add(-time.Minute).UnixNano(), ToUnixNano: c.now.Add(time.Hour).UnixNano(), Reason: "launch", CreatedBy: "ops"}})
	c.submit("r", [][]string{{"h1"}, {"h2"}}, nil)
	for i := 0; i < 5; i++ {
		c.settle("r")
		c.advance(time.Second)
	}
	c.wantPhase("r", 0, pending)
	if held := c.events("r", "phase.held"); len(held) != 1 || !strings.Contains(held[0].GetMessage(), "launch") {
		t.Fatalf("phase.held events (want exactly one):\n%s", c.dumpEvents("r"))
	}
	c.must(raftfsm.RemoveFreeze, &v1.RemoveFreezeCommand{TimeUnixNano: c.now.UnixNano(), Id: "w", Actor: "ops"})
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	// The global freeze holds the next phase.
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: true, Reason: "incident", Actor: "ops"})
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, verified)
	c.wantPhase("r", 1, pending)
	c.must(raftfsm.SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: c.now.UnixNano(), On: false, Actor: "ops"})
	c.settle("r")
	c.wantPhase("r", 1, deploying)
}

func TestApprovalWaitsForAnOperator(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2"}}, func(s *v1.ReleaseSpec) { s.Approval = &v1.ApprovalSpec{AfterPhases: []int32{0}} })
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.wantRelease("r", awaiting)
	c.wantPhase("r", 1, pending)
	c.must(raftfsm.ApprovePhase, &v1.ApprovePhaseCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", Index: 0, Actor: "alice"})
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", State: running, Actor: "alice", CurrentPhase: -1})
	c.settle("r")
	c.wantPhase("r", 1, deploying)
}

func TestPromoteSkipBakeIsRecorded(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	c.must(raftfsm.SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", Index: 0,
		State: verified, BakeSkipped: true, Reason: "bake skipped by operator (emergency promote) by bob"})
	c.settle("r")
	c.wantPhase("r", 1, deploying)
	if sk := c.events("r", "phase.bake_skipped"); len(sk) != 1 || !strings.Contains(sk[0].GetMessage(), "bob") {
		t.Fatalf("phase.bake_skipped:\n%s", c.dumpEvents("r"))
	}
}

func TestOperatorPauseStopsAdvancingAndRollbackReverts(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", State: paused, Actor: "bob", CurrentPhase: -1})
	c.advance(2 * time.Minute)
	c.settle("r")
	c.wantPhase("r", 0, baking) // the bake deadline passed, but nothing advances while paused
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", State: rollingBack, Actor: "bob", CurrentPhase: -1})
	c.settle("r")
	if !slices.Equal(c.reverts, []string{"h1"}) {
		t.Fatalf("reverts %v", c.reverts)
	}
	c.report("h1", reverted)
	c.settle("r")
	c.wantRelease("r", rolledBack)
}

func TestReleaseWithoutPhasesIsPlannedAtStart(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", nil, func(s *v1.ReleaseSpec) {
		s.Phases = &v1.PhasesSpec{Canary: 1, Growth: "geometric", Factor: 2}
		s.Bake = &v1.BakeSpec{FirstMs: 1000, Decay: 1, MinMs: 1000}
	})
	c.settle("r")
	r := c.release("r")
	if len(r.GetPhases()) < 2 || len(r.GetPhases()[0].GetHosts()) != 1 {
		t.Fatalf("plan = %v", r.GetPhases())
	}
	c.wantPhase("r", 0, deploying)
	if len(c.events("r", "release.planned")) != 1 {
		t.Fatalf("events:\n%s", c.dumpEvents("r"))
	}
}

func TestRevertOfAHostThatNeverStartedSettles(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.report("h1", healthy)
	// h2 never got its order: still assigned, heartbeats show version 1.
	c.hbs["h2"] = &v1.Heartbeat{Slots: []*v1.SlotMetrics{{App: "api", Version: "1"}}}
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r", State: rollingBack, Actor: "bob", CurrentPhase: -1})
	c.settle("r")
	c.report("h1", reverted)
	c.settle("r")
	c.wantRelease("r", rollingBack) // h2 is reverting; its agent ignores the order
	c.advance(11 * time.Second)
	c.settle("r")
	c.wantRelease("r", rolledBack)
}

func TestAssignmentsAreAudited(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	ev := c.events("r", "hosts.assigned")
	if len(ev) != 1 || ev[0].GetEvidence()["hosts"] != "h1,h2" || ev[0].GetEvidence()["host.h1"] != "generation 1" {
		t.Fatalf("hosts.assigned:\n%s", c.dumpEvents("r"))
	}
	// A new leader does not assign again.
	c.o.ForgetForTest()
	c.settle("r")
	if n := len(c.events("r", "hosts.assigned")); n != 1 {
		t.Fatalf("%d hosts.assigned events after a failover, want 1", n)
	}
}

func TestNewLeaderWaitsBoundedForMetricsAtTheDeadline(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2"}}, func(s *v1.ReleaseSpec) { s.Gates.MaxCpuPercent = 90 })
	c.settle("r")
	c.healthyAll("r", 0)
	c.now = time.Unix(0, c.phase("r", 0).GetBakeDeadlineUnixNano()).Add(time.Second)
	c.o.ForgetForTest()
	delete(c.hbs, "h1") // the new leader has no heartbeat from h1 yet
	c.settle("r")
	c.wantPhase("r", 0, baking)
	c.advance(11 * time.Second) // UnreachableAfter: no more waiting; no data is inconclusive
	c.settle("r")
	c.wantRelease("r", paused)
	if len(c.events("r", "gate.inconclusive")) != 1 {
		t.Fatalf("events:\n%s", c.dumpEvents("r"))
	}
}

// checkDecisionsCarryEvidence fails unless every decision in the release's
// audit log comes with its evidence, in the same entry: each phase.started
// or gate.* event is followed by the phase transition it justified, and
// each phase transition of the orchestrator by the evidence before it.
// (The FSM appends a transition's evidence right before the transition's
// own event, so one entry shows as adjacent events with one timestamp.)
func checkDecisionsCarryEvidence(t *testing.T, c *cluster, id string) {
	t.Helper()
	evs := c.state().Events(id, 0, 0)
	evidence := func(e *v1.Event) bool {
		return e.GetKind() == "phase.started" || strings.HasPrefix(e.GetKind(), "gate.")
	}
	decision := func(e *v1.Event) bool {
		switch e.GetKind() {
		case "phase.deploying", "phase.baking", "phase.verified", "phase.failed":
			return e.GetActor() == "" || e.GetActor() == rollout.Actor
		}
		return false
	}
	for i, e := range evs {
		if evidence(e) {
			j := i
			for j < len(evs) && evidence(evs[j]) {
				j++
			}
			if j == len(evs) || !decision(evs[j]) || evs[j].GetTimeUnixNano() != e.GetTimeUnixNano() {
				t.Fatalf("event %d (%s) is evidence without its decision:\n%s", e.GetSeq(), e.GetKind(), c.dumpEvents(id))
			}
		}
		if decision(e) && e.GetMessage() != "" && !strings.Contains(e.GetMessage(), "bake skipped") {
			if i == 0 || !evidence(evs[i-1]) || evs[i-1].GetTimeUnixNano() != e.GetTimeUnixNano() {
				t.Fatalf("event %d (%s) is a decision without its evidence:\n%s", e.GetSeq(), e.GetKind(), c.dumpEvents(id))
			}
		}
	}
}

// TestDecisionAndEvidenceAreOneEntry: the leader is lost (its writes fail)
// right after it evaluated a phase's gates, before the phase is failed, and
// once as it starts the next phase. The log never shows the gate readings
// without the failed phase, nor a phase started twice; the next leader
// takes each decision once, with its evidence.
func TestDecisionAndEvidenceAreOneEntry(t *testing.T) {
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1"}, {"h2", "h3"}}, func(s *v1.ReleaseSpec) { s.Gates.MaxCpuPercent = 90 })
	lost := errors.New("injected: leadership lost")

	// Starting phase 0: the decision's write fails once.
	c.failWrite = func(typ raftfsm.MessageType, m proto.Message) error {
		if cmd, ok := m.(*v1.SetPhaseStateCommand); ok && cmd.GetState() == deploying {
			return lost
		}
		return nil
	}
	if _, err := c.o.StepForTest(context.Background(), "r"); !errors.Is(err, lost) {
		t.Fatalf("step: %v, want the injected failure", err)
	}
	checkDecisionsCarryEvidence(t, c, "r")
	c.wantPhase("r", 0, pending)
	c.failWrite = nil
	c.o.ForgetForTest() // a new leader
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	if n := len(c.events("r", "phase.started")); n != 1 {
		t.Fatalf("phase.started %d times:\n%s", n, c.dumpEvents("r"))
	}

	c.healthyAll("r", 0)
	c.wantPhase("r", 0, baking)
	c.hbs["h1"].Slots[0].CpuPercent = 97.5
	c.now = time.Unix(0, c.phase("r", 0).GetBakeDeadlineUnixNano()).Add(time.Millisecond)

	// Gates evaluated, failing; the write of "phase failed" fails.
	c.failWrite = func(typ raftfsm.MessageType, m proto.Message) error {
		if cmd, ok := m.(*v1.SetPhaseStateCommand); ok && cmd.GetState() == phFailed {
			return lost
		}
		return nil
	}
	if _, err := c.o.StepForTest(context.Background(), "r"); !errors.Is(err, lost) {
		t.Fatalf("step: %v, want the injected failure", err)
	}
	checkDecisionsCarryEvidence(t, c, "r")
	c.wantPhase("r", 0, baking)
	if gf := c.events("r", "gate.failed"); len(gf) != 0 {
		t.Fatalf("gate.failed in the log while phase 0 is still baking:\n%s", c.dumpEvents("r"))
	}

	c.failWrite = nil
	c.o.ForgetForTest()
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	c.wantRelease("r", rollingBack)
	checkDecisionsCarryEvidence(t, c, "r")
	if gf := c.events("r", "gate.failed"); len(gf) != 1 || gf[0].GetEvidence()["gate"] != "max_cpu_percent" {
		t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
	}
}

// TestFinalizeResendBacksOff: a host that took its finalize order and has
// not reported finalized (its report waiting for raft, at 10,000 hosts)
// is sent the order again after FinalizeResend, then after twice as long
// each time, up to 8 × FinalizeResend; a host whose session did not take
// the order gets it again every FinalizeResend.
func TestFinalizeResendBacksOff(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	c.submit("r", [][]string{{"h1", "h2"}}, nil)
	c.settle("r")
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.wantRelease("r", running) // finalizing
	c.connected["h2"] = false   // h2's session is down: orders do not reach it
	// Resend is 2 s (DefaultConfig); h1 took its first order at 0 s.
	var h1, h2 []time.Duration
	start := c.now
	for elapsed := time.Duration(0); elapsed <= 40*time.Second; elapsed += 500 * time.Millisecond {
		c.now = start.Add(elapsed)
		c.finalizes = nil
		c.settle("r")
		for _, h := range c.finalizes {
			if h == "h1" {
				h1 = append(h1, elapsed)
			} else {
				h2 = append(h2, elapsed)
			}
		}
	}
	// The first orders went out at the bake deadline (before start).
	if want := []time.Duration{2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second}; !slices.Equal(h1, want) {
		t.Errorf("h1 (took each order) sent the order again at %v, want %v", h1, want)
	}
	// h2: every 2 s until it counts as unreachable (UnreachableAfter, 10 s).
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second, 10 * time.Second}; !slices.Equal(h2, want) {
		t.Errorf("h2 (session down) sent the order again at %v, want %v", h2, want)
	}
	c.report("h1", finalized)
	c.connected["h2"] = true
	c.report("h2", finalized)
	c.settle("r")
	c.wantRelease("r", succeeded)
}
