package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/chain"
	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/spec/specpb"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// parseChain turns a submitted chain source into the chain to store.
// Errors carry file:line:column, the field and the reason.
func parseChain(name string, src []byte) (*rollwavev1.Chain, error) {
	if name == "" {
		name = "chain-spec.hcl"
	}
	if len(src) == 0 {
		return nil, errorf(raftfsm.ErrInvalid, "%s: the chain spec is empty", name)
	}
	if len(src) > maxSpecSize {
		return nil, errorf(raftfsm.ErrInvalid, "%s: the chain spec is %d bytes, over the %d byte limit", name, len(src), maxSpecSize)
	}
	c, err := spec.ParseChain(name, src)
	if err != nil {
		return nil, withKind(raftfsm.ErrInvalid, err)
	}
	out := &rollwavev1.Chain{Name: c.Name, SourceName: name, Source: src}
	for _, st := range c.Steps {
		out.Steps = append(out.Steps, &rollwavev1.ChainStep{
			Name: st.Release.Name, After: st.After, MinGapMs: st.MinGap.Milliseconds(), Spec: specpb.ToProto(st.Release),
		})
	}
	return out, nil
}

func (o *operatorService) SubmitChain(ctx context.Context, req *rollwavev1.SubmitChainRequest) (*rollwavev1.SubmitChainResponse, error) {
	// A bad spec is refused by whichever server receives it.
	if _, err := parseChain(req.GetSourceName(), req.GetSource()); err != nil {
		return nil, err
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.SubmitChain, o.submitChainLocal)
}

func (o *operatorService) submitChainLocal(ctx context.Context, req *rollwavev1.SubmitChainRequest) (*rollwavev1.SubmitChainResponse, error) {
	c, err := parseChain(req.GetSourceName(), req.GetSource())
	if err != nil {
		return nil, err
	}
	for _, st := range c.GetSteps() {
		if err := o.s.checkGateURLs(st.GetSpec()); err != nil {
			return nil, fmt.Errorf("release %q: %w", st.GetName(), err)
		}
	}
	st := o.s.fsm.State()
	if st.Chain(c.GetName()) != nil {
		return nil, errorf(raftfsm.ErrExists, "a chain named %q exists already; give the new one another name", c.GetName())
	}
	first := c.GetSteps()[0]
	if active := st.ActiveRelease(first.GetSpec().GetApp()); active != nil {
		return nil, errorf(raftfsm.ErrConflict, "app %q already has release %q (%s); abort or finish it first",
			first.GetSpec().GetApp(), active.GetId(), stateName(active.GetState()))
	}
	// The first release is planned now, as `release submit` plans; the
	// later ones are planned when the leader starts them.
	var phases []*rollwavev1.Phase
	p, perr := plan.Compute(first.GetSpec(), o.s.fleetForPlanning())
	switch {
	case perr == nil:
		phases = p.Phases
	case req.GetStart():
		return nil, errorf(raftfsm.ErrConflict, "cannot start chain %q: release %q: %v", c.GetName(), first.GetName(), perr)
	case !errors.Is(perr, plan.ErrNoHosts):
		return nil, errorf(raftfsm.ErrInvalid, "chain %q: plan %s: %v", c.GetName(), first.GetName(), perr)
	}
	now := time.Now().UnixNano()
	actor := actorOf(ctx, req.GetActor())
	rel := &rollwavev1.Release{
		Id: first.GetName(), Spec: first.GetSpec(), Phases: phases, CreatedUnixNano: now, UpdatedUnixNano: now,
		CreatedBy: actor, SourceName: req.GetSourceName(), Source: req.GetSource(),
	}
	if err := o.s.applyErr(raftfsm.SubmitChain, &rollwavev1.SubmitChainCommand{TimeUnixNano: now, Actor: actor, Chain: c, First: rel}); err != nil {
		return nil, err
	}
	if req.GetStart() {
		if err := o.s.setReleaseState(rel.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
			fmt.Sprintf("started on submit of chain %q", c.GetName()), actor); err != nil {
			return nil, err
		}
	}
	return &rollwavev1.SubmitChainResponse{Chain: withoutSource(st.Chain(c.GetName()))}, nil
}

func withoutSource(c *rollwavev1.Chain) *rollwavev1.Chain {
	if c != nil {
		c.Source = nil
	}
	return c
}

// chainStatus is a chain as `chain status` shows it: each step's release
// and, for the step the chain waits on, why and how much of min_gap is left.
func (s *Server) chainStatus(c *rollwavev1.Chain, now time.Time) *rollwavev1.GetChainResponse {
	st := s.fsm.State()
	d := chain.Decide(st, c, now)
	resp := &rollwavev1.GetChainResponse{Chain: withoutSource(c)}
	for i, step := range c.GetSteps() {
		ss := &rollwavev1.ChainStepStatus{Name: step.GetName()}
		if step.GetStarted() {
			if r := st.Release(step.GetName()); r != nil {
				r.Source = nil
				ss.Release = r
			}
		}
		if id := step.GetRevertReleaseId(); id != "" {
			if r := st.Release(id); r != nil {
				r.Source = nil
				ss.Revert = r
			}
		}
		switch {
		case d.Step == i && (d.Action == chain.Wait && d.Release == nil || d.Action == chain.StartStep || d.Action == chain.StartRevert):
			ss.Waiting = d.Reason
			ss.GapRemainingMs = d.GapRemaining.Milliseconds()
		case d.Step == i-1 && d.Action == chain.Wait && d.Release != nil && !step.GetStarted() &&
			c.GetState() == rollwavev1.ChainState_CHAIN_STATE_ACTIVE:
			// The step before this one is still rolling out.
			ss.Waiting = fmt.Sprintf("%q waits: %s", step.GetName(), d.Reason)
		}
		resp.Steps = append(resp.Steps, ss)
	}
	return resp
}

func (o *operatorService) GetChain(ctx context.Context, req *rollwavev1.GetChainRequest) (*rollwavev1.GetChainResponse, error) {
	if req.GetName() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "chain status needs a chain name (rollwave chain status NAME)")
	}
	c := o.s.fsm.State().Chain(req.GetName())
	if c == nil {
		return nil, errorf(raftfsm.ErrNotFound, "no chain named %q; see 'rollwave chain list'", req.GetName())
	}
	return o.s.chainStatus(c, time.Now()), nil
}

func (o *operatorService) ListChains(ctx context.Context, req *rollwavev1.ListChainsRequest) (*rollwavev1.ListChainsResponse, error) {
	now := time.Now()
	resp := &rollwavev1.ListChainsResponse{}
	for _, c := range o.s.fsm.State().Chains() {
		resp.Chains = append(resp.Chains, o.s.chainStatus(c, now))
	}
	return resp, nil
}

// RollbackChain rolls a chain back, last step first: the leader's
// orchestrator rolls back a live step in place, and brings a succeeded
// step's app back to the version before it with a revert release.
func (o *operatorService) RollbackChain(ctx context.Context, req *rollwavev1.ChainActionRequest) (*rollwavev1.GetChainResponse, error) {
	if req.GetName() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "chain rollback needs a chain name (rollwave chain rollback NAME)")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.RollbackChain, func(ctx context.Context, req *rollwavev1.ChainActionRequest) (*rollwavev1.GetChainResponse, error) {
		st := o.s.fsm.State()
		c := st.Chain(req.GetName())
		if c == nil {
			return nil, errorf(raftfsm.ErrNotFound, "no chain named %q; see 'rollwave chain list'", req.GetName())
		}
		if !raftfsm.ChainTransitionAllowed(c.GetState(), rollwavev1.ChainState_CHAIN_STATE_ROLLING_BACK) {
			return nil, errorf(raftfsm.ErrConflict, "chain %q is %s; only an active, succeeded or halted chain rolls back",
				c.GetName(), raftfsm.ChainStateName(c.GetState()))
		}
		// Refuse up front what the rollback could not finish: a
		// succeeded step whose app has no earlier version to go back to.
		for _, step := range c.GetSteps() {
			r := st.Release(step.GetName())
			if !step.GetStarted() || r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED {
				continue
			}
			if chain.Prior(st, r) == nil {
				return nil, errorf(raftfsm.ErrConflict, "chain %q: release %q succeeded and app %q has no earlier succeeded release to go back to; nothing was changed",
					c.GetName(), r.GetId(), r.GetSpec().GetApp())
			}
		}
		why := req.GetReason()
		if why == "" {
			why = "chain rollback ordered by operator"
		}
		if err := o.s.applyErr(raftfsm.SetChainState, &rollwavev1.SetChainStateCommand{
			TimeUnixNano: time.Now().UnixNano(), Chain: c.GetName(), State: rollwavev1.ChainState_CHAIN_STATE_ROLLING_BACK,
			Reason: why, Actor: actorOf(ctx, req.GetActor()),
		}); err != nil {
			return nil, err
		}
		return o.s.chainStatus(st.Chain(c.GetName()), time.Now()), nil
	})
}

// refuseChainRollback refuses a rollback of a chain step while a later
// step of its chain is live: rolling back the readers of a new format
// under its writers breaks them. `rollwave chain rollback` goes last
// step first.
func (s *Server) refuseChainRollback(r *rollwavev1.Release) error {
	if r.GetChain() == "" || r.GetChainRevert() {
		return nil
	}
	c := s.fsm.State().Chain(r.GetChain())
	if c == nil {
		return nil
	}
	if c.GetState() == rollwavev1.ChainState_CHAIN_STATE_ROLLING_BACK {
		return errorf(raftfsm.ErrConflict, "release %q is step %d of chain %q, which is rolling back (last step first); see 'rollwave chain status %s'",
			r.GetId(), r.GetChainStep()+1, c.GetName(), c.GetName())
	}
	if live := chain.LiveAfter(s.fsm.State(), c, r.GetId()); live != nil {
		return errorf(raftfsm.ErrConflict, "release %q is step %d of chain %q and release %q (step %d, %s) after it is live: rolling %q back alone would break it; "+
			"roll the chain back instead (last step first): rollwave chain rollback %s",
			r.GetId(), r.GetChainStep()+1, c.GetName(), live.GetId(), live.GetChainStep()+1, stateName(live.GetState()), r.GetId(), c.GetName())
	}
	return nil
}
