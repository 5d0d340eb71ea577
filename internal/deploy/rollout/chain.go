package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/deploy/chain"
	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// chainLoop drives release chains on the leader until ctx ends: it acts
// on chain.Decide for every active or rolling-back chain whenever a chain
// or an app changes, and at least every Tick (min_gap and drift are
// time- and host-driven). Each decision is one raft entry with its
// evidence; a wait is one chain.waiting event per change of reason.
func (o *Orchestrator) chainLoop(ctx context.Context) {
	waiting := map[string]string{}
	b := backoff.New(o.cfg.RetryMin, o.cfg.RetryMax)
	for {
		chains, changed := o.state.ChainsWatch()
		if err := o.chainsOnce(ctx, chains, waiting); err != nil {
			if !o.backOff(ctx, b, "chain step failed; retrying", err) {
				return
			}
			continue
		}
		b.Reset()
		if !o.waitChange(ctx, changed) {
			return
		}
	}
}

// backOff logs err and waits the backoff's next (jittered, capped) delay;
// false once ctx ends.
func (o *Orchestrator) backOff(ctx context.Context, b *backoff.Backoff, msg string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	wait := b.Next()
	o.log.Warn(msg, "error", err, "retry_in", wait)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// chainsOnce takes the next action of each chain that has one. waiting
// holds the reason last recorded per chain (leader memory: a new leader
// records the current reason once more).
func (o *Orchestrator) chainsOnce(ctx context.Context, chains []*rollwavev1.Chain, waiting map[string]string) error {
	for _, c := range chains {
		st := c.GetState()
		if st != rollwavev1.ChainState_CHAIN_STATE_ACTIVE && st != rollwavev1.ChainState_CHAIN_STATE_ROLLING_BACK {
			delete(waiting, c.GetName())
			continue
		}
		if err := o.chainStep(ctx, c, waiting); err != nil {
			return fmt.Errorf("chain %q: %w", c.GetName(), err)
		}
	}
	return nil
}

func (o *Orchestrator) chainStep(ctx context.Context, c *rollwavev1.Chain, waiting map[string]string) error {
	now := o.now()
	d := chain.Decide(o.state, c, now)
	name := c.GetName()
	chainEv := func(kind, msg string, evidence map[string]string) *rollwavev1.Event {
		e := &rollwavev1.Event{Kind: kind, Message: msg, Evidence: evidence}
		if d.Release != nil {
			e.ReleaseId = d.Release.GetId()
		}
		return e
	}
	setChain := func(to rollwavev1.ChainState, evs ...*rollwavev1.Event) error {
		o.log.Info("chain state", "chain", name, "to", raftfsm.ChainStateName(to), "reason", d.Reason)
		t := now.UnixNano()
		return o.w.SetChainState(ctx, &rollwavev1.SetChainStateCommand{
			TimeUnixNano: t, Chain: name, State: to, Reason: d.Reason, Actor: Actor, Events: stamp(evs, t),
		})
	}
	switch d.Action {
	case chain.Wait:
		// Only a step that has not started waits for the chain: a
		// running release has its own events.
		if d.Release != nil || waiting[name] == d.Reason {
			return nil
		}
		ev := chainEv("chain.waiting", d.Reason, map[string]string{"chain": name, "step": fmt.Sprint(d.Step), "reason": d.Reason})
		if d.Step >= 0 && d.Step < len(c.GetSteps()) {
			ev.ReleaseId = c.GetSteps()[d.Step].GetName()
		}
		if err := o.events(ctx, ev); err != nil {
			return err
		}
		waiting[name] = d.Reason
		return nil
	case chain.StartStep, chain.StartRevert:
		kind := "chain.step_started"
		if d.Action == chain.StartRevert {
			kind = "chain.revert_started"
		}
		ev := chainEv(kind, d.Reason, d.Evidence)
		if why, ok := waiting[name]; ok {
			ev.Evidence["waited_for"] = why
		}
		t := now.UnixNano()
		o.log.Info("chain step", "chain", name, "step", d.Step, "release_id", d.Release.GetId(), "revert", d.Action == chain.StartRevert)
		if err := o.w.StartChainStep(ctx, &rollwavev1.StartChainStepCommand{
			TimeUnixNano: t, Chain: name, Step: int32(d.Step), Release: d.Release, Revert: d.Action == chain.StartRevert,
			Actor: Actor, Events: stamp([]*rollwavev1.Event{ev}, t),
		}); err != nil {
			return err
		}
		delete(waiting, name)
		return nil
	case chain.RollBackRelease:
		to := relRollingBack
		if d.Release.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_PENDING {
			to = rollwavev1.ReleaseState_RELEASE_STATE_ABORTED
		}
		return o.setRelease(ctx, d.Release, to, d.Reason, chainEv("chain.step_rolling_back", d.Reason, d.Evidence))
	case chain.Succeed:
		return setChain(rollwavev1.ChainState_CHAIN_STATE_SUCCEEDED)
	case chain.Halt:
		return setChain(rollwavev1.ChainState_CHAIN_STATE_HALTED, chainEv("chain.step_ended", d.Reason, d.Evidence))
	case chain.RolledBack:
		return setChain(rollwavev1.ChainState_CHAIN_STATE_ROLLED_BACK)
	case chain.Fail:
		return setChain(rollwavev1.ChainState_CHAIN_STATE_FAILED, chainEv("chain.rollback_stuck", d.Reason, d.Evidence))
	}
	return nil
}

// requiresBlock reports whether a requires block of r holds phase p, and
// why: a host of the phase runs a required app at a version outside the
// constraint (or not at all), as its agent's slot facts in raft say.
// Constraints were checked at submit; one that no longer parses (a spec
// stored by another version) holds the phase with that error.
func (o *Orchestrator) requiresBlock(r *rollwavev1.Release, p *rollwavev1.Phase) (bool, string) {
	reqs := r.GetSpec().GetRequires()
	if len(reqs) == 0 {
		return false, ""
	}
	var hosts []*rollwavev1.Host
	for _, h := range p.GetHosts() {
		if host := o.state.Host(h); host != nil {
			hosts = append(hosts, host)
		}
	}
	for _, req := range reqs {
		c, err := spec.ParseConstraint(req.GetVersion())
		if err != nil {
			return true, fmt.Sprintf("requires %s: %v", req.GetApp(), err)
		}
		var below []string
		for _, h := range hosts {
			has := drift.ActiveVersion(h, req.GetApp())
			if satisfied(c, has) {
				continue
			}
			if has == "" {
				has = "none"
			}
			below = append(below, fmt.Sprintf("%s has %s", h.GetId(), has))
		}
		if len(below) > 0 {
			shown := below
			if len(shown) > 10 {
				shown = append(shown[:10:10], fmt.Sprintf("... (%d more)", len(below)-10))
			}
			return true, fmt.Sprintf("requires %s %s: %d of %d host(s) below it: %s",
				req.GetApp(), req.GetVersion(), len(below), len(hosts), strings.Join(shown, ", "))
		}
	}
	return false, ""
}

// satisfied reports whether version meets c; a version that is not a
// semantic version (or none) does not.
func satisfied(c *semver.Constraints, version string) bool {
	if version == "" {
		return false
	}
	v, err := semver.NewVersion(version)
	return err == nil && c.Check(v)
}
