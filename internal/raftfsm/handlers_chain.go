package raftfsm

import (
	"fmt"
	"slices"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Chain limits: a chain is a handful of releases, not a pipeline.
const (
	// MaxChainSteps bounds the releases of one chain.
	MaxChainSteps = 10
	// MaxChainGap bounds a step's min_gap.
	MaxChainGap = 30 * 24 * time.Hour
)

var chainTransitions = map[v1.ChainState][]v1.ChainState{
	v1.ChainState_CHAIN_STATE_ACTIVE: {
		v1.ChainState_CHAIN_STATE_SUCCEEDED, v1.ChainState_CHAIN_STATE_HALTED, v1.ChainState_CHAIN_STATE_ROLLING_BACK,
	},
	v1.ChainState_CHAIN_STATE_SUCCEEDED:    {v1.ChainState_CHAIN_STATE_ROLLING_BACK},
	v1.ChainState_CHAIN_STATE_HALTED:       {v1.ChainState_CHAIN_STATE_ROLLING_BACK},
	v1.ChainState_CHAIN_STATE_ROLLING_BACK: {v1.ChainState_CHAIN_STATE_ROLLED_BACK, v1.ChainState_CHAIN_STATE_FAILED},
}

// ChainTransitionAllowed reports whether a chain may move from one state to another.
func ChainTransitionAllowed(from, to v1.ChainState) bool { return allowed(chainTransitions, from, to) }

// ChainTerminal reports whether a chain has nothing left to do.
func ChainTerminal(s v1.ChainState) bool {
	switch s {
	case v1.ChainState_CHAIN_STATE_ROLLED_BACK, v1.ChainState_CHAIN_STATE_FAILED:
		return true
	}
	return false
}

// ChainStateName turns CHAIN_STATE_ROLLING_BACK into "rolling_back".
func ChainStateName(s v1.ChainState) string { return stateName(s) }

// checkChainShape validates a chain's steps: 2 to MaxChainSteps, unique
// non-empty names, each step after the one before it, gaps in range.
func checkChainShape(c *v1.Chain) error {
	steps := c.GetSteps()
	if len(steps) < 2 || len(steps) > MaxChainSteps {
		return reject(ErrInvalid, "chain %q has %d release(s); a chain holds 2 to %d", c.GetName(), len(steps), MaxChainSteps)
	}
	seen := map[string]bool{}
	for i, st := range steps {
		switch {
		case st.GetName() == "":
			return reject(ErrInvalid, "chain %q: step %d has no name", c.GetName(), i)
		case seen[st.GetName()]:
			return reject(ErrInvalid, "chain %q: release %q appears twice", c.GetName(), st.GetName())
		case st.GetSpec().GetApp() == "":
			return reject(ErrInvalid, "chain %q: release %q: spec.app is required", c.GetName(), st.GetName())
		case st.GetMinGapMs() < 0 || time.Duration(st.GetMinGapMs())*time.Millisecond > MaxChainGap:
			return reject(ErrInvalid, "chain %q: release %q: min_gap %dms out of range (0 to %s)", c.GetName(), st.GetName(), st.GetMinGapMs(), MaxChainGap)
		case i == 0 && st.GetAfter() != "":
			return reject(ErrInvalid, "chain %q: the first release %q cannot be after %q", c.GetName(), st.GetName(), st.GetAfter())
		case i > 0 && st.GetAfter() != steps[i-1].GetName():
			return reject(ErrInvalid, "chain %q: release %q must be after %q (the release before it), not %q", c.GetName(), st.GetName(), steps[i-1].GetName(), st.GetAfter())
		}
		seen[st.GetName()] = true
	}
	return nil
}

// applySubmitChain stores a new chain and submits its first step's
// release, pending, in the same entry (type 27). Every step's release id
// must be free, in releases and in other chains, so that no later step
// finds its name taken.
func applySubmitChain(s *view, idx uint64, cmd *v1.SubmitChainCommand) error {
	c, first := cmd.GetChain(), cmd.GetFirst()
	switch {
	case c == nil || c.GetName() == "":
		return reject(ErrInvalid, "chain name is required")
	case s.chain(c.GetName()) != nil:
		return reject(ErrExists, "chain %q already exists; choose another name", c.GetName())
	}
	if err := checkChainShape(c); err != nil {
		return err
	}
	if first.GetId() != c.GetSteps()[0].GetName() {
		return reject(ErrInvalid, "chain %q: the first release must be %q, got %q", c.GetName(), c.GetSteps()[0].GetName(), first.GetId())
	}
	for _, st := range c.GetSteps() {
		if s.release(st.GetName()) != nil {
			return reject(ErrExists, "chain %q: a release named %q exists already; rename the step", c.GetName(), st.GetName())
		}
	}
	var clash error
	each(s, tChain, "id", nil, func(o *v1.Chain) bool {
		for _, st := range o.GetSteps() {
			if slices.ContainsFunc(c.GetSteps(), func(n *v1.ChainStep) bool { return n.GetName() == st.GetName() }) {
				clash = reject(ErrExists, "chain %q: release name %q is a step of chain %q; rename the step", c.GetName(), st.GetName(), o.GetName())
				return false
			}
		}
		return true
	})
	if clash != nil {
		return clash
	}
	now := cmd.GetTimeUnixNano()
	first = clone(first)
	first.Chain, first.ChainStep = c.GetName(), 0
	if err := applySubmitRelease(s, idx, &v1.SubmitReleaseCommand{TimeUnixNano: now, Release: first, Actor: cmd.GetActor()}); err != nil {
		return err
	}
	c = clone(c)
	c.State = v1.ChainState_CHAIN_STATE_ACTIVE
	for _, st := range c.Steps {
		st.Started, st.StartedUnixNano, st.RevertReleaseId = false, 0, ""
	}
	c.Steps[0].Started, c.Steps[0].StartedUnixNano = true, now
	c.CreatedUnixNano, c.UpdatedUnixNano = now, now
	if c.CreatedBy == "" {
		c.CreatedBy = cmd.GetActor()
	}
	s.put(tChain, c)
	names := make([]string, len(c.Steps))
	for i, st := range c.Steps {
		names[i] = st.GetName()
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, ReleaseId: first.GetId(), Kind: "chain.submitted", Actor: cmd.GetActor(),
		Message:  fmt.Sprintf("chain %q submitted: %s", c.GetName(), joinArrow(names)),
		Evidence: map[string]string{"chain": c.GetName(), "steps": fmt.Sprint(len(c.Steps))},
	})
	return nil
}

func joinArrow(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += " -> "
		}
		out += n
	}
	return out
}

// applyStartChainStep submits and starts a chain step's release (type
// 28): the next step of an active chain once the step before it
// succeeded and its min_gap passed (at the command's time), or, with
// revert, the release that brings a succeeded step's app back during the
// chain's rollback.
func applyStartChainStep(s *view, idx uint64, cmd *v1.StartChainStepCommand) error {
	c := s.chain(cmd.GetChain())
	if c == nil {
		return reject(ErrNotFound, "chain %q does not exist", cmd.GetChain())
	}
	i := cmd.GetStep()
	if i < 0 || int(i) >= len(c.GetSteps()) {
		return reject(ErrInvalid, "chain %q has no step %d (it has %d)", c.GetName(), i, len(c.GetSteps()))
	}
	st := c.GetSteps()[i]
	r := cmd.GetRelease()
	now := cmd.GetTimeUnixNano()
	if cmd.GetRevert() {
		stepRel := s.release(st.GetName())
		switch {
		case c.GetState() != v1.ChainState_CHAIN_STATE_ROLLING_BACK:
			return reject(ErrConflict, "chain %q is %s; a revert release starts only while it rolls back", c.GetName(), stateName(c.GetState()))
		case !st.GetStarted() || stepRel.GetState() != v1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			return reject(ErrConflict, "chain %q: step %q has not succeeded; only a succeeded step is reverted by a new release", c.GetName(), st.GetName())
		case st.GetRevertReleaseId() != "":
			return reject(ErrExists, "chain %q: step %q already has revert release %q", c.GetName(), st.GetName(), st.GetRevertReleaseId())
		case r.GetId() == "" || r.GetId() == st.GetName():
			return reject(ErrInvalid, "chain %q: a revert release needs an id of its own", c.GetName())
		}
	} else {
		switch {
		case c.GetState() != v1.ChainState_CHAIN_STATE_ACTIVE:
			return reject(ErrConflict, "chain %q is %s; no step starts", c.GetName(), stateName(c.GetState()))
		case st.GetStarted():
			return reject(ErrExists, "chain %q: step %q has started already", c.GetName(), st.GetName())
		case i == 0 || !c.GetSteps()[i-1].GetStarted():
			return reject(ErrConflict, "chain %q: step %q starts only after step %q", c.GetName(), st.GetName(), c.GetSteps()[max(i-1, 0)].GetName())
		case r.GetId() != st.GetName():
			return reject(ErrInvalid, "chain %q: step %d's release is %q, got %q", c.GetName(), i, st.GetName(), r.GetId())
		}
		prev := s.release(c.GetSteps()[i-1].GetName())
		if prev.GetState() != v1.ReleaseState_RELEASE_STATE_SUCCEEDED {
			return reject(ErrConflict, "chain %q: step %q starts only once %q succeeded; it is %s", c.GetName(), st.GetName(), prev.GetId(), stateName(prev.GetState()))
		}
		if gap := st.GetMinGapMs() * int64(time.Millisecond); now < prev.GetUpdatedUnixNano()+gap {
			return reject(ErrConflict, "chain %q: step %q starts %s after %q succeeded (min_gap); %s left",
				c.GetName(), st.GetName(), time.Duration(gap), prev.GetId(), time.Duration(prev.GetUpdatedUnixNano()+gap-now))
		}
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	r = clone(r)
	r.Chain, r.ChainStep, r.ChainRevert = c.GetName(), i, cmd.GetRevert()
	if err := applySubmitRelease(s, idx, &v1.SubmitReleaseCommand{TimeUnixNano: now, Release: r, Actor: cmd.GetActor()}); err != nil {
		return err
	}
	if err := setReleaseState(s, &v1.SetReleaseStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), State: v1.ReleaseState_RELEASE_STATE_RUNNING, CurrentPhase: -1,
		Reason: fmt.Sprintf("started by chain %q", c.GetName()), Actor: cmd.GetActor(), Events: cmd.GetEvents(),
	}, false); err != nil {
		return err
	}
	c = clone(c)
	if cmd.GetRevert() {
		c.Steps[i].RevertReleaseId = r.GetId()
	} else {
		c.Steps[i].Started, c.Steps[i].StartedUnixNano = true, now
	}
	c.UpdatedUnixNano = now
	s.put(tChain, c)
	return nil
}

// applySetChainState moves a chain to another state (type 29).
func applySetChainState(s *view, _ uint64, cmd *v1.SetChainStateCommand) error {
	c := s.chain(cmd.GetChain())
	if c == nil {
		return reject(ErrNotFound, "chain %q does not exist", cmd.GetChain())
	}
	from, to := c.GetState(), cmd.GetState()
	if !ChainTransitionAllowed(from, to) {
		return reject(ErrIllegalTransition, "chain %q cannot go from %s to %s", c.GetName(), stateName(from), stateName(to))
	}
	if err := checkEvents(cmd.GetEvents()); err != nil {
		return err
	}
	now := cmd.GetTimeUnixNano()
	s.appendEvents(cmd.GetEvents(), now)
	c = clone(c)
	c.State, c.Reason, c.UpdatedUnixNano = to, cmd.GetReason(), now
	s.put(tChain, c)
	s.appendEvent(&v1.Event{
		TimeUnixNano: now, Kind: "chain." + stateName(to), Actor: cmd.GetActor(),
		Message:  fmt.Sprintf("chain %q: %s -> %s: %s", c.GetName(), stateName(from), stateName(to), cmd.GetReason()),
		Evidence: map[string]string{"chain": c.GetName()},
	})
	return nil
}

// Chains returns every chain, sorted by name.
func (s *State) Chains() []*v1.Chain { return cloneAll[*v1.Chain](s.read(), tChain, "id", nil) }

// Chain returns one chain, or nil.
func (s *State) Chain(name string) *v1.Chain { return cloneOrNil(s.read().chain(name)) }

// ChainsWatch returns the chains and a watch that fires when one changes
// or any app does (a step's release starts or ends).
func (s *State) ChainsWatch() ([]*v1.Chain, Watch) {
	v, ws := s.watch()
	ws.Add(each(v, tChain, "id", nil, func(*v1.Chain) bool { return false }))
	ws.Add(each(v, tApp, "id", nil, func(*v1.App) bool { return false }))
	return cloneAll[*v1.Chain](v, tChain, "id", nil), Watch{ws}
}
