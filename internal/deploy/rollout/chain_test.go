package rollout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/chain"
	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func (c *cluster) chainsOnce() {
	c.t.Helper()
	if err := c.o.ChainsOnceForTest(context.Background()); err != nil {
		c.t.Fatalf("chains: %v", err)
	}
}

func (c *cluster) chain(name string) *v1.Chain { return c.state().Chain(name) }

func (c *cluster) wantChain(name string, want v1.ChainState) {
	c.t.Helper()
	if ch := c.chain(name); ch.GetState() != want {
		c.t.Fatalf("chain %s is %s (%s), want %s", name, ch.GetState(), ch.GetReason(), want)
	}
}

// chainEvents returns the events of kind about any release, in order.
func (c *cluster) chainEvents(kind string) []*v1.Event {
	var out []*v1.Event
	for _, e := range c.state().Events("", 0, 0) {
		if e.GetKind() == kind {
			out = append(out, e)
		}
	}
	return out
}

// planned is a spec the orchestrator plans itself: one host, then the rest.
func planned(id, version string) *v1.ReleaseSpec {
	return &v1.ReleaseSpec{Name: id, App: "api", Version: version,
		Health:   &v1.HealthSpec{MinHealthyTimeMs: 1000, HealthyDeadlineMs: 60_000},
		Gates:    &v1.GatesSpec{},
		Rollback: &v1.RollbackSpec{OnFailure: "all"},
		Phases:   &v1.PhasesSpec{Canary: 1, Growth: "geometric", Factor: 2},
		Bake:     &v1.BakeSpec{FirstMs: 1000, Decay: 1, MinMs: 1000},
	}
}

// drive takes a running release through every phase to succeeded, each
// host healthy, then finalized.
func (c *cluster) drive(id string) {
	c.t.Helper()
	c.settle(id)
	for range 10 {
		r := c.release(id)
		if r.GetState() != running {
			break
		}
		i := int(r.GetCurrentPhase())
		if c.phase(id, i).GetState() == verified {
			break // every phase verified: finalizing
		}
		c.healthyAll(id, i)
		c.bakeThrough(id, i)
	}
	for _, a := range c.state().LiveAssignments(id) {
		c.report(a.GetHost(), finalized)
	}
	c.settle(id)
	c.wantRelease(id, succeeded)
}

// submitChain stores chain "fmt" (read-new: api 2, then write-new: api 3
// after it with min_gap 1h) and starts its first release.
func (c *cluster) submitChain() {
	c.t.Helper()
	c.must(raftfsm.SubmitChain, &v1.SubmitChainCommand{TimeUnixNano: c.now.UnixNano(), Actor: "alice",
		Chain: &v1.Chain{Name: "fmt", Steps: []*v1.ChainStep{
			{Name: "read-new", Spec: planned("read-new", "2")},
			{Name: "write-new", After: "read-new", MinGapMs: time.Hour.Milliseconds(), Spec: planned("write-new", "3")},
		}},
		First: &v1.Release{Id: "read-new", Spec: planned("read-new", "2")}})
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "read-new",
		State: running, Actor: "alice", CurrentPhase: -1})
}

func TestChainOrderGapAndRollbackInReverse(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	// The version the chain's rollback goes back to.
	c.must(raftfsm.SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: c.now.UnixNano(), Actor: "test", Release: &v1.Release{Id: "base", Spec: planned("base", "1")}})
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "base", State: running, CurrentPhase: -1})
	c.drive("base")
	c.advance(time.Minute)
	c.submitChain()

	// While the first release runs, the second does not start and the
	// chain records no wait of its own (the release has its events).
	c.settle("read-new")
	c.chainsOnce()
	if c.chain("fmt").GetSteps()[1].GetStarted() || c.release("write-new") != nil {
		t.Fatal("write-new started while read-new runs")
	}
	if n := len(c.chainEvents("chain.waiting")); n != 0 {
		t.Fatalf("%d chain.waiting events while the first release runs", n)
	}
	c.drive("read-new")

	// Succeeded, but min_gap has not passed: one wait event, however many
	// rounds; the FSM refuses an early start too.
	c.advance(10 * time.Minute)
	c.chainsOnce()
	c.chainsOnce()
	waits := c.chainEvents("chain.waiting")
	if len(waits) != 1 || !strings.Contains(waits[0].GetMessage(), "min_gap 1h0m0s") || c.release("write-new") != nil {
		t.Fatalf("waits = %v, write-new = %v", waits, c.release("write-new"))
	}
	d := chain.Decide(c.state(), c.chain("fmt"), c.now)
	if d.Action != chain.Wait || d.GapRemaining != 50*time.Minute {
		t.Fatalf("decision = %+v", d)
	}
	err := c.apply(raftfsm.StartChainStep, &v1.StartChainStepCommand{TimeUnixNano: c.now.UnixNano(), Chain: "fmt", Step: 1,
		Release: &v1.Release{Id: "write-new", Spec: planned("write-new", "3")}})
	if !errors.Is(err, raftfsm.ErrConflict) || !strings.Contains(err.Error(), "left") {
		t.Fatalf("early start: %v", err)
	}

	// Gap passed: the leader starts write-new, the decision and its
	// evidence in one entry.
	c.advance(50 * time.Minute)
	c.chainsOnce()
	c.wantRelease("write-new", running)
	started := c.events("write-new", "chain.step_started")
	if len(started) != 1 || started[0].GetEvidence()["after"] != "read-new" || started[0].GetEvidence()["drifted_hosts"] != "0" ||
		!strings.Contains(started[0].GetEvidence()["waited_for"], "min_gap") {
		t.Fatalf("chain.step_started = %v", started)
	}
	if r := c.release("write-new"); r.GetChain() != "fmt" || r.GetChainStep() != 1 {
		t.Fatalf("write-new = %v", r)
	}
	// While write-new is live, read-new is not to be rolled back alone.
	if live := chain.LiveAfter(c.state(), c.chain("fmt"), "read-new"); live.GetId() != "write-new" {
		t.Fatalf("LiveAfter = %v", live)
	}
	c.settle("write-new")
	c.wantPhase("write-new", 0, deploying)

	// Chain rollback: write-new first (live: rolled back in place), then
	// read-new (succeeded: a revert release back to base's version).
	c.must(raftfsm.SetChainState, &v1.SetChainStateCommand{TimeUnixNano: c.now.UnixNano(), Chain: "fmt",
		State: v1.ChainState_CHAIN_STATE_ROLLING_BACK, Reason: "readers broke", Actor: "bob"})
	c.chainsOnce()
	c.wantRelease("write-new", rollingBack)
	c.chainsOnce() // waits for it; nothing else moves
	if c.release("read-new-revert") != nil {
		t.Fatal("read-new reverted before write-new rolled back")
	}
	c.settle("write-new")
	for _, h := range c.reverts {
		c.report(h, reverted)
	}
	c.settle("write-new")
	c.wantRelease("write-new", rolledBack)
	c.chainsOnce()
	rv := c.release("read-new-revert")
	if rv.GetState() != running || rv.GetSpec().GetVersion() != "1" || !rv.GetChainRevert() {
		t.Fatalf("revert release = %v", rv)
	}
	if e := c.events("read-new-revert", "chain.revert_started"); len(e) != 1 || e[0].GetEvidence()["to_release"] != "base" {
		t.Fatalf("chain.revert_started = %v", e)
	}
	c.drive("read-new-revert")
	c.chainsOnce()
	c.wantChain("fmt", v1.ChainState_CHAIN_STATE_ROLLED_BACK)
	if live := chain.LiveAfter(c.state(), c.chain("fmt"), "read-new"); live != nil {
		t.Fatalf("LiveAfter after the rollback = %v", live)
	}
}

func TestChainHaltsWhenAStepDoesNotSucceed(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	c.submitChain()
	c.settle("read-new")
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "read-new", State: v1.ReleaseState_RELEASE_STATE_ABORTED, Actor: "bob", CurrentPhase: -1, Reason: "wrong build"})
	c.chainsOnce()
	c.wantChain("fmt", v1.ChainState_CHAIN_STATE_HALTED)
	if c.release("write-new") != nil {
		t.Fatal("write-new started after read-new was aborted")
	}
	// The FSM refuses a start of a halted chain's step as well.
	c.advance(2 * time.Hour)
	err := c.apply(raftfsm.StartChainStep, &v1.StartChainStepCommand{TimeUnixNano: c.now.UnixNano(), Chain: "fmt", Step: 1,
		Release: &v1.Release{Id: "write-new", Spec: planned("write-new", "3")}})
	if !errors.Is(err, raftfsm.ErrConflict) {
		t.Fatalf("start of a halted chain's step: %v", err)
	}
	// A rollback of a chain whose first release never succeeded and has
	// no earlier version: nothing succeeded, so it is rolled back at once.
	c.must(raftfsm.SetChainState, &v1.SetChainStateCommand{TimeUnixNano: c.now.UnixNano(), Chain: "fmt", State: v1.ChainState_CHAIN_STATE_ROLLING_BACK, Actor: "bob"})
	c.chainsOnce()
	c.wantChain("fmt", v1.ChainState_CHAIN_STATE_ROLLED_BACK)
}

// withAuth registers hosts running app auth at the given versions ("" for
// none).
func (c *cluster) withAuth(versions map[string]string) {
	c.t.Helper()
	var hs []*v1.Host
	for id, ver := range versions {
		h := &v1.Host{Id: id, Cell: "a"}
		if ver != "" {
			h.Apps = []*v1.SlotFacts{{App: "auth", Active: v1.Slot_SLOT_BLUE, BlueVersion: ver, BlueState: "active"}}
		}
		hs = append(hs, h)
	}
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: hs})
}

func TestRequiresBlocksUntilTheOtherAppIsUpgraded(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	c.withAuth(map[string]string{"h1": "2.2.0", "h2": ""})
	c.submit("r", [][]string{{"h1"}, {"h2"}}, func(s *v1.ReleaseSpec) {
		s.Requires = []*v1.Requirement{{App: "auth", Version: ">= 2.3"}}
	})
	c.settle("r")
	c.advance(time.Second)
	c.settle("r")
	// Phase 0 does not start: no host is touched, one event says why.
	c.wantPhase("r", 0, pending)
	if a := c.state().Assignment("h1", "api"); a != nil {
		t.Fatalf("h1 assigned while blocked: %v", a)
	}
	held := c.events("r", "phase.held")
	if len(held) != 1 || held[0].GetEvidence()["requires"] != "requires auth >= 2.3: 1 of 1 host(s) below it: h1 has 2.2.0" {
		t.Fatalf("phase.held = %v", held)
	}
	// Upgraded: it starts by itself, and says what held it.
	c.withAuth(map[string]string{"h1": "2.3.1"})
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	if st := c.events("r", "phase.started"); len(st) != 1 || !strings.Contains(st[0].GetEvidence()["held_by"], "requires auth") {
		t.Fatalf("phase.started = %v", st)
	}
	// Phase 1's host has no auth at all: it holds there, with a new reason.
	c.healthyAll("r", 0)
	c.bakeThrough("r", 0)
	c.wantPhase("r", 1, pending)
	held = c.events("r", "phase.held")
	if len(held) != 2 || held[1].GetPhase() != 1 || !strings.Contains(held[1].GetMessage(), "h2 has none") {
		t.Fatalf("phase.held = %v", held)
	}
	c.withAuth(map[string]string{"h2": "3.0.0"})
	c.settle("r")
	c.wantPhase("r", 1, deploying)
}

// A host of the first release's target that is not on its version (here
// one that joined after it) holds the second release until it is.
func TestChainWaitsForDriftedHosts(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	c.submitChain()
	c.drive("read-new")
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: []*v1.Host{{Id: "h3", Cell: "a"}}})
	c.advance(2 * time.Hour)
	c.chainsOnce()
	if c.release("write-new") != nil {
		t.Fatal("write-new started with a drifted host")
	}
	waits := c.chainEvents("chain.waiting")
	if len(waits) != 1 || !strings.Contains(waits[0].GetMessage(), `1 host(s) of app "api" drifted from release "read-new": h3 (has "")`) {
		t.Fatalf("waits = %v", waits)
	}
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: []*v1.Host{{Id: "h3", Cell: "a",
		Apps: []*v1.SlotFacts{{App: "api", Active: v1.Slot_SLOT_GREEN, GreenVersion: "2", GreenState: "active"}}}}})
	c.chainsOnce()
	c.wantRelease("write-new", running)
}

// Both releases succeeded and nothing ran before the first: the chain's
// rollback brings write-new's hosts back to read-new's version, then
// stops, failed, saying the first has no earlier version to go back to.
func TestChainRollbackStopsWithoutAnEarlierVersion(t *testing.T) {
	c := newCluster(t, map[string]string{"h1": "a", "h2": "a"})
	c.submitChain()
	c.drive("read-new")
	c.advance(time.Hour)
	c.chainsOnce()
	c.drive("write-new")
	c.chainsOnce()
	c.wantChain("fmt", v1.ChainState_CHAIN_STATE_SUCCEEDED)
	c.must(raftfsm.SetChainState, &v1.SetChainStateCommand{TimeUnixNano: c.now.UnixNano(), Chain: "fmt",
		State: v1.ChainState_CHAIN_STATE_ROLLING_BACK, Actor: "bob"})
	c.chainsOnce()
	rv := c.release("write-new-revert")
	if rv.GetSpec().GetVersion() != "2" || rv.GetChainStep() != 1 {
		t.Fatalf("revert of write-new = %v", rv)
	}
	c.drive("write-new-revert")
	c.chainsOnce()
	c.wantChain("fmt", v1.ChainState_CHAIN_STATE_FAILED)
	stuck := c.chainEvents("chain.rollback_stuck")
	if len(stuck) != 1 || !strings.Contains(stuck[0].GetMessage(), `no earlier succeeded release`) || stuck[0].GetReleaseId() != "read-new" {
		t.Fatalf("chain.rollback_stuck = %v", stuck)
	}
}
