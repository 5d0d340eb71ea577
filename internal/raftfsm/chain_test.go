package raftfsm

import (
	"errors"
	"testing"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func chainMsg(name string, steps ...string) *v1.Chain {
	c := &v1.Chain{Name: name}
	for i, s := range steps {
		st := &v1.ChainStep{Name: s, Spec: &v1.ReleaseSpec{Name: s, App: "db", Version: "v-" + s}}
		if i > 0 {
			st.After, st.MinGapMs = steps[i-1], time.Hour.Milliseconds()
		}
		c.Steps = append(c.Steps, st)
	}
	return c
}

func submitChainCmd(c *v1.Chain, first string) cmd {
	return cmd{SubmitChain, &v1.SubmitChainCommand{TimeUnixNano: t0, Actor: "alice", Chain: c,
		First: &v1.Release{Id: first, Spec: &v1.ReleaseSpec{Name: first, App: "db", Version: "v-" + first}}}}
}

func startStepCmd(at int64, step int32, id string, revert bool) cmd {
	return cmd{StartChainStep, &v1.StartChainStepCommand{TimeUnixNano: at, Chain: "fmt", Step: step, Revert: revert, Actor: "rollout",
		Release: &v1.Release{Id: id, Spec: &v1.ReleaseSpec{Name: id, App: "db", Version: "v-" + id}}}}
}

func chainStateCmd(to v1.ChainState) cmd {
	return cmd{SetChainState, &v1.SetChainStateCommand{TimeUnixNano: t0 + 5, Chain: "fmt", State: to, Actor: "bob"}}
}

// Issue 18 item 1: the FSM's own chain rules. A bad chain or an
// out-of-order step is refused and changes nothing; the second release
// starts only once the first succeeded and min_gap passed at the
// command's time; a chain survives a snapshot.
func TestChainRules(t *testing.T) {
	f := New(nil)
	mustApply(t, f, base()...)
	before := dumpNoIndex(f.State())
	for _, c := range []struct {
		name string
		cmd  cmd
		kind error
	}{
		// A chain of one release is a release.
		{"one step", submitChainCmd(chainMsg("fmt", "r"), "r"), ErrInvalid},
		{"first release mismatch", submitChainCmd(chainMsg("fmt", "r", "w"), "w"), ErrInvalid},
		{"after skips a step", submitChainCmd(func() *v1.Chain {
			c := chainMsg("fmt", "a", "b", "c")
			c.Steps[2].After = "a"
			return c
		}(), "a"), ErrInvalid},
		{"step named like a release", submitChainCmd(chainMsg("fmt", "r", "api-1"), "r"), ErrExists},
		{"negative gap", submitChainCmd(func() *v1.Chain { c := chainMsg("fmt", "r", "w"); c.Steps[1].MinGapMs = -1; return c }(), "r"), ErrInvalid},
		{"no chain", startStepCmd(t0, 1, "w", false), ErrNotFound},
	} {
		if rej := asRejected(t, apply(t, f, c.cmd)); !errors.Is(rej, c.kind) {
			t.Fatalf("%s: %v, want %v", c.name, rej, c.kind)
		}
	}
	if after := dumpNoIndex(f.State()); after != before {
		t.Fatal("a refused chain command changed the state")
	}

	mustApply(t, f, submitChainCmd(chainMsg("fmt", "r", "w"), "r"))
	if r := f.State().Release("r"); r.GetState() != rsPending || r.GetChain() != "fmt" {
		t.Fatalf("first release = %v", r)
	}
	// Another chain may not reuse a step name, even one not yet started.
	if rej := asRejected(t, apply(t, f, submitChainCmd(chainMsg("fmt2", "x", "w"), "x"))); !errors.Is(rej, ErrExists) {
		t.Fatalf("reused step name: %v", rej)
	}
	succeededAt := t0 + 10
	for _, c := range []struct {
		name string
		cmd  cmd
		kind error
	}{
		{"first not succeeded", startStepCmd(t0+int64(2*time.Hour), 1, "w", false), ErrConflict},
		{"step 0 again", startStepCmd(t0, 0, "r", false), ErrExists},
		{"wrong release id", startStepCmd(t0+int64(2*time.Hour), 1, "x", false), ErrInvalid},
		{"revert while active", startStepCmd(t0, 0, "r-revert", true), ErrConflict},
		{"active to rolled back", chainStateCmd(v1.ChainState_CHAIN_STATE_ROLLED_BACK), ErrIllegalTransition},
	} {
		if rej := asRejected(t, apply(t, f, c.cmd)); !errors.Is(rej, c.kind) {
			t.Fatalf("%s: %v, want %v", c.name, rej, c.kind)
		}
	}
	// api-1 holds app "api", not "db": r may run.
	mustApply(t, f, relStateCmd("r", rsRunning), cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: succeededAt,
		ReleaseId: "r", State: v1.ReleaseState_RELEASE_STATE_SUCCEEDED, CurrentPhase: -1}})
	if rej := asRejected(t, apply(t, f, startStepCmd(succeededAt+int64(59*time.Minute), 1, "w", false))); !errors.Is(rej, ErrConflict) || !containsStr(rej.Error(), "left") {
		t.Fatalf("start before min_gap: %v", rej)
	}
	mustApply(t, f, startStepCmd(succeededAt+int64(time.Hour), 1, "w", false))
	if w := f.State().Release("w"); w.GetState() != rsRunning || w.GetChainStep() != 1 || !f.State().Chain("fmt").GetSteps()[1].GetStarted() {
		t.Fatalf("second release = %v", w)
	}
	if err := CheckInvariants(f.State()); err != nil {
		t.Fatal(err)
	}
	// A snapshot carries the chain.
	g := New(nil)
	if err := g.Restore(nopCloser(persist(t, f))); err != nil {
		t.Fatal(err)
	}
	if !g.State().Equal(f.State()) || g.State().Chain("fmt").GetSteps()[1].GetStartedUnixNano() != succeededAt+int64(time.Hour) {
		t.Fatalf("restored:\n%s", g.State().Dump())
	}
}
