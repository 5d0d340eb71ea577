package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/freeze"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const (
	relPending     = rollwavev1.ReleaseState_RELEASE_STATE_PENDING
	relRunning     = rollwavev1.ReleaseState_RELEASE_STATE_RUNNING
	relPaused      = rollwavev1.ReleaseState_RELEASE_STATE_PAUSED
	relAwaiting    = rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL
	relRollingBack = rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK
	relRolledBack  = rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	relSucceeded   = rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED
	relFailed      = rollwavev1.ReleaseState_RELEASE_STATE_FAILED
	relPartial     = rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED

	phPending   = rollwavev1.PhaseState_PHASE_STATE_PENDING
	phDeploying = rollwavev1.PhaseState_PHASE_STATE_DEPLOYING
	phBaking    = rollwavev1.PhaseState_PHASE_STATE_BAKING
	phVerified  = rollwavev1.PhaseState_PHASE_STATE_VERIFIED
	phFailed    = rollwavev1.PhaseState_PHASE_STATE_FAILED

	asAssigned  = rollwavev1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED
	asStaging   = rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING
	asSwitched  = rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED
	asBaking    = rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING
	asHealthy   = rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY
	asFinalized = rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED
	asFailed    = rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED
	asReverting = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING
	asIsolated  = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED
)

// Rollback policies (rollback.on_failure).
const (
	PolicyAll   = "all"
	PolicyPhase = "phase"
	PolicyPause = "pause"
	// PolicyFailAll is PolicyAll by its multiregion name.
	PolicyFailAll = "fail_all"
	// PolicyFailLocal rolls back only the failing region once the
	// release's phases split per region; before, it acts as PolicyAll.
	PolicyFailLocal = "fail_local"
)

// step takes the next action for a release. It reports true when the
// release needs no more watching (terminal, gone or never started).
func (o *Orchestrator) step(ctx context.Context, rn *run) (bool, error) {
	r := o.state.Release(rn.id)
	if r == nil || raftfsm.ReleaseTerminal(r.GetState()) {
		o.samples.unneed(rn.id)
		return true, nil
	}
	// Registered before anything below can start a phase, so that no
	// sample the phase's baseline gate reads is missed.
	if since, ok := o.samplesNeededSince(r); ok {
		o.samples.need(rn.id, since)
	} else {
		o.samples.unneed(rn.id)
	}
	switch r.GetState() {
	case relRunning:
		rn.pausedPhase = -1
		return false, o.stepRunning(ctx, rn, r)
	case relRollingBack:
		return false, o.stepRollback(ctx, rn, r)
	case relWatching:
		return false, o.stepWatching(ctx, rn, r)
	case relPaused, relAwaiting:
		// Nothing advances; bake deadlines keep counting (they are absolute).
		return false, nil
	}
	return true, nil // pending: not started
}

// samplesNeededSince reports whether r's gates read heartbeat samples and
// from when on: the baseline gate reads its current phase's window, which
// never starts before the phase did; a phase not started yet starts after
// now.
func (o *Orchestrator) samplesNeededSince(r *rollwavev1.Release) (time.Time, bool) {
	if g := r.GetSpec().GetGates(); g.GetBaseline() != "compare" && g.GetMaxErrorRate() <= 0 && g.GetMaxLatencyP99Ms() <= 0 {
		return time.Time{}, false
	}
	now := o.now()
	if r.GetState() == relWatching {
		// The watch reads a trailing window; a longer need would keep
		// a week of samples in memory.
		return now.Add(-watchRequestWindow(r)), true
	}
	idx := r.GetCurrentPhase()
	if idx < 0 || int(idx) >= len(r.GetPhases()) {
		return now, true
	}
	phases := []int32{idx}
	if rg := r.GetRegions(); len(rg) > 0 && r.GetPhases()[idx].GetState() == phVerified && idx+1 == rg[0].GetFirstPhase() {
		// Parallel regions: the oldest phase a region bakes now.
		phases = phases[:0]
		for _, g := range rg {
			if g.GetState() == relRunning {
				phases = append(phases, g.GetCurrentPhase())
			}
		}
	}
	since := now
	for _, i := range phases {
		if st := r.GetPhases()[i].GetStartedUnixNano(); st > 0 && st < since.UnixNano() {
			since = time.Unix(0, st)
		}
	}
	return since, true
}

func (o *Orchestrator) stepRunning(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	if len(r.GetPhases()) == 0 {
		return o.planRelease(ctx, r)
	}
	idx := r.GetCurrentPhase()
	if idx < 0 || int(idx) >= len(r.GetPhases()) {
		return fmt.Errorf("release %q: current phase %d out of range", r.GetId(), idx)
	}
	p := r.GetPhases()[idx]
	switch p.GetState() {
	case phPending:
		return o.startPhase(ctx, rn, r, p)
	case phDeploying, phBaking:
		return o.watchPhase(ctx, rn, r, p)
	case phVerified:
		return o.afterVerified(ctx, rn, r, p)
	case phFailed:
		return o.applyPolicy(ctx, rn, r, p)
	}
	return nil
}

// ---------------------------------------------------------------- writes

// events writes audit events that go with no decision (a phase held by a
// freeze, a host failure, gates read again). Evidence of a decision goes
// into the decision's own entry instead: setRelease and setPhase take it.
func (o *Orchestrator) events(ctx context.Context, evs ...*rollwavev1.Event) error {
	if len(evs) == 0 {
		return nil
	}
	now := o.now().UnixNano()
	return o.w.AppendEvents(ctx, &rollwavev1.AppendEventsCommand{TimeUnixNano: now, Events: stamp(evs, now)})
}

// stamp sets the orchestrator's actor and the time on events.
func stamp(evs []*rollwavev1.Event, now int64) []*rollwavev1.Event {
	for _, e := range evs {
		if e.Actor == "" {
			e.Actor = Actor
		}
		e.TimeUnixNano = now
	}
	return evs
}

// setRelease moves the release to another state; evs, the decision's
// evidence, are committed in the same raft entry.
func (o *Orchestrator) setRelease(ctx context.Context, r *rollwavev1.Release, to rollwavev1.ReleaseState, reason string, evs ...*rollwavev1.Event) error {
	o.log.Info("release state", "release_id", r.GetId(), "to", stateName(to), "reason", reason)
	now := o.now().UnixNano()
	return o.w.SetReleaseState(ctx, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), State: to, Reason: reason, Actor: Actor, CurrentPhase: -1,
		Events: stamp(evs, now),
	})
}

// setPhase moves a phase to another state; evs, the decision's evidence,
// are committed in the same raft entry.
func (o *Orchestrator) setPhase(ctx context.Context, r *rollwavev1.Release, p *rollwavev1.Phase, to rollwavev1.PhaseState, reason string, deadline time.Time, evs ...*rollwavev1.Event) error {
	o.log.Info("phase state", "release_id", r.GetId(), "phase", p.GetIndex(), "to", stateName(to), "reason", reason)
	now := o.now().UnixNano()
	cmd := &rollwavev1.SetPhaseStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), Index: p.GetIndex(), State: to, Reason: reason,
		Events: stamp(evs, now),
	}
	if !deadline.IsZero() {
		cmd.BakeDeadlineUnixNano = deadline.UnixNano()
	}
	return o.w.SetPhaseState(ctx, cmd)
}

// ev is an event of r about phase; a regional phase's event carries its
// region (phases.parallel_regions_after).
func ev(r *rollwavev1.Release, phase int32, kind, msg string, evidence map[string]string) *rollwavev1.Event {
	e := &rollwavev1.Event{ReleaseId: r.GetId(), Phase: phase, Kind: kind, Message: msg, Evidence: evidence}
	if phase >= 0 && int(phase) < len(r.GetPhases()) {
		e.Region = r.GetPhases()[phase].GetRegion()
	}
	return e
}

// ---------------------------------------------------------------- phases

// planRelease plans a release that was submitted without a plan against
// the fleet of this moment.
func (o *Orchestrator) planRelease(ctx context.Context, r *rollwavev1.Release) error {
	pl, err := plan.Compute(r.GetSpec(), o.agents.Fleet())
	if err != nil {
		return o.setRelease(ctx, r, relPaused, "cannot plan the release: "+err.Error(),
			ev(r, 0, "release.plan_failed", "cannot plan the release: "+err.Error(), nil))
	}
	return o.w.SetReleasePlan(ctx, &rollwavev1.SubmitReleaseCommand{
		TimeUnixNano: o.now().UnixNano(), Actor: Actor,
		Release: &rollwavev1.Release{Id: r.GetId(), Phases: pl.Phases},
	})
}

// frozen reports whether a freeze holds, at now, the start of a phase of
// app in cells (or of a new release of app on a host in cells), and why:
// the global freeze, or a one-off or calendar window whose scope covers
// them (internal/freeze), named with its end. An admin's freeze override
// on r (OverrideFreeze) lifts the windows, not the global freeze.
func (o *Orchestrator) frozen(r *rollwavev1.Release, app string, cells []string, now time.Time) (bool, string) {
	if on, why := o.state.GlobalFreeze(); on {
		return true, "global freeze: " + why
	}
	if r.GetFreezeOverride() != nil {
		return false, ""
	}
	if hs := freeze.ActiveAt(o.state.Freezes(), app, cells, now); len(hs) > 0 {
		return true, hs[0].Reason()
	}
	return false, ""
}

func (o *Orchestrator) startPhase(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase) error {
	idx := p.GetIndex()
	held, why := o.frozen(r, r.GetSpec().GetApp(), p.GetCells(), o.now())
	var requires string
	if !held {
		held, requires = o.requiresBlock(r, p)
		why = requires
	}
	if held {
		if rn.held[idx] != why {
			evidence := map[string]string{"reason": why}
			if requires != "" {
				evidence["requires"] = requires
			}
			if err := o.events(ctx, ev(r, idx, "phase.held", fmt.Sprintf("phase %d held: %s", idx, why), evidence)); err != nil {
				return err
			}
			rn.held[idx] = why
		}
		return nil
	}
	evidence := map[string]string{
		"hosts": strings.Join(p.GetHosts(), ","), "cells": strings.Join(p.GetCells(), ","),
		"bake_ms": fmt.Sprint(p.GetBakeMs()),
	}
	if why, ok := rn.held[idx]; ok {
		evidence["held_by"] = why
	}
	if ov := r.GetFreezeOverride(); ov != nil {
		evidence["freeze_override"] = ov.GetActor() + ": " + ov.GetReason()
	}
	msg := fmt.Sprintf("phase %d starts: %d host(s) in cell(s) %s", idx, len(p.GetHosts()), strings.Join(p.GetCells(), ", "))
	if err := o.setPhase(ctx, r, p, phDeploying, msg, time.Time{}, ev(r, idx, "phase.started", msg, evidence)); err != nil {
		return err
	}
	_, err := o.assignMissing(ctx, r, p, o.phaseAssignments(r, p))
	return err
}

// phaseAssignments reads the current assignment of app on each of the
// phase's hosts (nil where none), in the phase's host order, from one
// view and without copies: the objects are the stored ones and must not
// be modified. One wake-up of a big phase reads them once (assignMissing
// and classify share the read).
func (o *Orchestrator) phaseAssignments(r *rollwavev1.Release, p *rollwavev1.Phase) []*rollwavev1.Assignment {
	return o.state.AssignmentsShared(r.GetSpec().GetApp(), p.GetHosts())
}

// assignMissing assigns the phase's hosts that have no assignment of this
// release yet, in one batch. A host is never assigned twice by a release:
// after a failover the new leader only fills the gaps. curs are the
// phase's current assignments (phaseAssignments); it reports whether it
// assigned any host (curs are then out of date).
func (o *Orchestrator) assignMissing(ctx context.Context, r *rollwavev1.Release, p *rollwavev1.Phase, curs []*rollwavev1.Assignment) (bool, error) {
	var hosts []string
	for i, h := range p.GetHosts() {
		cur := curs[i]
		if cur != nil && cur.GetReleaseId() == r.GetId() {
			continue
		}
		if cur != nil && !raftfsm.AssignmentEnded(cur.GetState()) {
			continue // an older release's generation is still live; wait for it
		}
		if !o.state.HasHost(h) {
			continue // deleted; the host gate fails it at its deadline
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return false, nil
	}
	// The hosts.assigned event is written with the assignments, in one
	// entry (dispatch.AssignHosts).
	if _, err := o.agents.AssignHosts(r.GetId(), p.GetIndex(), hosts); err != nil {
		return false, fmt.Errorf("assign %d host(s) of phase %d: %w", len(hosts), p.GetIndex(), err)
	}
	return true, nil
}

// hostDeadline is how long after assignment a host may take to become
// healthy before the orchestrator calls it failed.
func (o *Orchestrator) hostDeadline(spec *rollwavev1.ReleaseSpec) time.Duration {
	hd := sattime.Millis(spec.GetHealth().GetHealthyDeadlineMs())
	if hd <= 0 {
		hd = 2 * time.Minute
	}
	return sattime.Sum(hd, sattime.Millis(spec.GetHealth().GetMinHealthyTimeMs()), o.cfg.HostGrace, trafficStepsTime(spec), darkTime(spec, hd))
}

// darkTime is the longest the agent's dark phase (phases.dark) can hold
// a host before its first step: dark, extended while the new slot is not
// healthy or the shadow comparison inconclusive to 5 × dark or dark +
// healthy_deadline, whichever is longer (internal/agent DarkLimit).
func darkTime(spec *rollwavev1.ReleaseSpec, healthyDeadline time.Duration) time.Duration {
	dark := sattime.Millis(spec.GetPhases().GetDarkMs())
	if dark <= 0 {
		return 0
	}
	return sattime.Sum(dark, max(4*dark, healthyDeadline))
}

// trafficStepsTime is the longest the agent's weighted traffic steps can
// take before the host reports healthy: every step but the last (100)
// lasts step_time, extended to at most 5 × step_time while its gate is
// inconclusive (the agent's bound, internal/agent/steps.go).
func trafficStepsTime(spec *rollwavev1.ReleaseSpec) time.Duration {
	t := spec.GetTraffic()
	if len(t.GetSteps()) < 2 {
		return 0
	}
	st := sattime.Millis(t.GetStepTimeMs())
	if st <= 0 {
		st = time.Minute
	}
	var total time.Duration
	for range len(t.GetSteps()) - 1 {
		total = sattime.Sum(total, 5*st)
	}
	return total
}

type hostStatus int

const (
	hostPending hostStatus = iota
	hostHealthy
	hostFailed
	// hostUnreachable: decided, and counted against max_unreachable
	// only: the host reverted on its own because it was cut off, or its
	// deadline passed while the leader could not reach it. A lost link
	// says nothing about the release; the host is drifted afterwards.
	hostUnreachable
)

// unreachableReason starts the reason the orchestrator writes when it ends
// the assignment of a host whose deadline passed while it was unreachable;
// classify reads it back so that a new leader counts the host the same way.
const unreachableReason = "orchestrator: unreachable: "

// hostView is one host of a phase as the gates see it.
type hostView struct {
	host        string
	a           *rollwavev1.Assignment // nil: none of this release
	status      hostStatus
	unreachable bool
	reason      string
	// markFailed: the orchestrator decided the failure (deadline) and
	// must record it.
	markFailed bool
	// isolatedAt is when the host reported it reverted on its own
	// (REVERTED_ISOLATED); zero otherwise.
	isolatedAt time.Time
}

func timeRFC(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// classify is the host gate's view of each of the phase's hosts; curs are
// their current assignments (phaseAssignments).
func (o *Orchestrator) classify(r *rollwavev1.Release, p *rollwavev1.Phase, curs []*rollwavev1.Assignment, now time.Time) []hostView {
	deadline := o.hostDeadline(r.GetSpec())
	out := make([]hostView, 0, len(curs))
	for i, h := range p.GetHosts() {
		v := hostView{host: h}
		cur := curs[i]
		if cur != nil && cur.GetReleaseId() == r.GetId() {
			v.a = cur
		}
		switch st := v.a.GetState(); {
		case v.a == nil:
			started := time.Unix(0, p.GetStartedUnixNano())
			if now.Sub(started) > deadline {
				v.status, v.reason = hostFailed, fmt.Sprintf("not assigned within %s of the phase start", deadline)
				if !o.state.HasHost(h) {
					v.reason = "host is no longer registered"
				} else if cur != nil {
					v.reason = fmt.Sprintf("generation %d of release %q is still %s", cur.GetGeneration(), cur.GetReleaseId(), stateName(cur.GetState()))
				}
			}
		case st == asHealthy || st == asFinalized:
			v.status = hostHealthy
		case st == asIsolated:
			v.status, v.unreachable = hostUnreachable, true
			v.isolatedAt = time.Unix(0, v.a.GetUpdatedUnixNano())
			v.reason = fmt.Sprintf("reverted on its own after losing contact (reverted_isolated, reported %s): %s",
				timeRFC(v.isolatedAt), v.a.GetReason())
		case st == asFailed && strings.HasPrefix(v.a.GetReason(), unreachableReason):
			v.status, v.unreachable = hostUnreachable, true
			v.reason = strings.TrimPrefix(v.a.GetReason(), unreachableReason)
		case raftfsm.AssignmentEnded(st) || st == asReverting:
			v.status, v.reason = hostFailed, fmt.Sprintf("%s: %s", stateName(st), v.a.GetReason())
		default: // assigned, staging, switched, baking
			if now.Sub(time.Unix(0, v.a.GetCreatedUnixNano())) <= deadline {
				break
			}
			if !o.agents.Connected(h) {
				if _, ok := o.unreachableFor(h, now); !ok {
					// No session, but not silent for
					// UnreachableAfter as far as this leader
					// knows (a new leader does not know since
					// when): not failed on a guess; decided
					// within UnreachableAfter.
					break
				}
			}
			v.markFailed = true
			if since, ok := o.unreachableFor(h, now); ok {
				// Cut off: the host may still be working, or have
				// reverted; either way the link is at fault, not the
				// release.
				v.status, v.unreachable = hostUnreachable, true
				v.reason = fmt.Sprintf("not healthy within %s of assignment and no session or heartbeat for %s; last state %s",
					deadline, since.Round(time.Millisecond), stateName(st))
				break
			}
			v.status = hostFailed
			v.reason = fmt.Sprintf("not healthy within %s of assignment (healthy_deadline + min_healthy_time + grace); last state %s",
				deadline, stateName(st))
		}
		if v.status != hostFailed && v.status != hostUnreachable && v.a != nil {
			if since, ok := o.unreachableFor(h, now); ok {
				v.unreachable = true
				v.reason = fmt.Sprintf("no session or heartbeat for %s", since.Round(time.Millisecond))
			}
		}
		out = append(out, v)
	}
	return out
}

// unreachableFor reports whether host has had no session and no heartbeat
// with this leader for longer than UnreachableAfter, and for how long.
func (o *Orchestrator) unreachableFor(host string, now time.Time) (time.Duration, bool) {
	if o.agents.Connected(host) {
		o.seen(host, now)
		return 0, false
	}
	since := now.Sub(o.lastSeenAt(host))
	return since, since > o.cfg.UnreachableAfter
}

// watchPhase runs the host gate and the budgets of a deploying or baking
// phase, moves a deploying phase to baking once every host is decided, and
// reads the phase gates at the bake deadline.
func (o *Orchestrator) watchPhase(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase) error {
	curs := o.phaseAssignments(r, p)
	if p.GetState() == phDeploying {
		assigned, err := o.assignMissing(ctx, r, p, curs)
		if err != nil {
			return err
		}
		if assigned {
			curs = o.phaseAssignments(r, p) // the new assignments are what classify must see
		}
	}
	now := o.now()
	views := o.classify(r, p, curs, now)
	if err := o.recordHostFailures(ctx, rn, r, p, views); err != nil {
		return err
	}
	budgets := o.budgetGates(r, p, views)
	if len(failedOf(budgets)) > 0 {
		return o.failPhase(ctx, r, p, budgets)
	}
	switch p.GetState() {
	case phDeploying:
		healthy, failed, unreachable := 0, 0, 0
		for _, v := range views {
			switch v.status {
			case hostPending:
				return nil // still deploying
			case hostHealthy:
				healthy++
			case hostFailed:
				failed++
			case hostUnreachable:
				unreachable++
			}
		}
		// Saturating: a deadline past 2262 would wrap in UnixNano and
		// pass at once.
		bake := sattime.Millis(p.GetBakeMs())
		deadline := sattime.Add(now, bake)
		hostGate := gateResult{Reading: health.Reading{Gate: "host_health", Value: float64(healthy), Limit: float64(len(views)), Passed: true,
			Detail: fmt.Sprintf("%d of %d host(s) healthy for min_healthy_time, %d failed and %d unreachable within budget", healthy, len(views), failed, unreachable)}}
		return o.setPhase(ctx, r, p, phBaking, fmt.Sprintf("%s; baking %s until %s", hostGate.Detail, bake,
			deadline.UTC().Format(time.RFC3339Nano)), deadline, gateEvent(r, p.GetIndex(), hostGate))
	case phBaking:
		if now.Before(time.Unix(0, p.GetBakeDeadlineUnixNano())) {
			if decided, err := o.watchRequestGates(ctx, rn, r, p, views, budgets); decided || err != nil {
				return err
			}
			return o.watchMetricGates(ctx, rn, r, p, budgets)
		}
		return o.evaluateBake(ctx, rn, r, p, views, budgets)
	}
	return nil
}

// recordHostFailures writes the host failures the orchestrator decided
// (one UpdateAssignments) and one host.failed event per failed host and
// generation (one AppendEvents).
func (o *Orchestrator) recordHostFailures(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) error {
	var updates []*rollwavev1.AssignmentUpdate
	var evs []*rollwavev1.Event
	var keys []string
	for _, v := range views {
		if v.status != hostFailed && v.status != hostUnreachable {
			continue
		}
		if v.markFailed {
			prefix := "orchestrator: "
			if v.status == hostUnreachable {
				prefix = unreachableReason
			}
			updates = append(updates, &rollwavev1.AssignmentUpdate{Host: v.host, App: v.a.GetApp(), Generation: v.a.GetGeneration(),
				State: asFailed, Reason: prefix + v.reason})
		}
		key := hostGenKey(v.host, v.a.GetGeneration())
		if rn.hostLogged[key] {
			continue
		}
		evidence := map[string]string{"reason": v.reason, "generation": fmt.Sprint(v.a.GetGeneration())}
		kind, msg := "host.failed", fmt.Sprintf("host %s failed: %s", v.host, v.reason)
		if v.status == hostUnreachable {
			// Not a failure of the release: counted against
			// max_unreachable, and the host is drifted afterwards.
			kind, msg = "host.unreachable", fmt.Sprintf("host %s unreachable, counted against max_unreachable: %s", v.host, v.reason)
			if !v.isolatedAt.IsZero() {
				evidence["reverted_isolated_at"] = timeRFC(v.isolatedAt)
			}
		}
		e := ev(r, p.GetIndex(), kind, msg, evidence)
		e.Host = v.host
		evs = append(evs, e)
		keys = append(keys, key)
	}
	if len(updates) > 0 {
		if err := o.w.UpdateAssignments(ctx, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: o.now().UnixNano(), Updates: updates}); err != nil {
			return err
		}
	}
	if err := o.events(ctx, evs...); err != nil {
		return err
	}
	for _, k := range keys {
		rn.hostLogged[k] = true
	}
	return nil
}

// evaluateBake reads the phase gates at the bake deadline.
func (o *Orchestrator) evaluateBake(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView, budgets []gateResult) error {
	if o.inDoubt(views, o.now()) {
		// A host the leader lost contact with moments ago may be
		// reverting on its own (its isolation watchdog) or may never
		// hear that the phase is verified; calling it healthy would
		// verify the phase on a guess. Wait until it is back or counts
		// as unreachable (UnreachableAfter, a bounded wait).
		return nil
	}
	if err := o.recordUnreachableAtBake(ctx, rn, r, p, views); err != nil {
		return err
	}
	if rh := rn.rehearsal; rh != nil && rh.phase == p.GetIndex() && rehearses(r, p) {
		return o.awaitRehearsal(ctx, rn, r, p, views) // the gates passed already
	}
	if g := r.GetSpec().GetGates(); (g.GetMaxCpuPercent() > 0 || g.GetMaxMemPercent() > 0 || g.GetMaxRestarts() > 0 ||
		g.GetMaxErrorRate() > 0 || g.GetMaxLatencyP99Ms() > 0) && o.awaitingMetrics(views) {
		return nil // a new leader: give agents time to reconnect and report
	}
	if _, _, ready := o.requestWindow(p); requestGatesOn(r) && !ready {
		return nil // a new leader: let it see a bake's worth of requests
	}
	results := append([]gateResult{}, budgets...)
	results = append(results, o.thresholdGates(r, views)...)
	results = append(results, o.requestGates(r, p, views)...)
	results = append(results, o.baselineGates(r, p, views)...)
	if len(r.GetSpec().GetGates().GetMetricGates()) > 0 {
		results = append(results, o.readMetricGates(ctx, rn, r, p, nil)...)
		if ctx.Err() != nil {
			return ctx.Err() // leadership lost mid-reading: not evidence
		}
	}
	if len(failedOf(results)) > 0 {
		return o.failPhase(ctx, r, p, results)
	}
	var evs []*rollwavev1.Event
	for _, g := range results {
		evs = append(evs, gateEvent(r, p.GetIndex(), g))
	}
	var inconclusive []string
	for _, g := range results {
		if g.inconclusive {
			inconclusive = append(inconclusive, g.Detail)
		}
	}
	if len(inconclusive) > 0 {
		if rn.pausedPhase == p.GetIndex() {
			// Read again after a resume, still inconclusive: the
			// readings are recorded, the decision stays the human's.
			return o.events(ctx, evs...)
		}
		if err := o.setRelease(ctx, r, relPaused, fmt.Sprintf("phase %d gates inconclusive, a human must decide (resume to read the gates again, promote -skip-bake, rollback or abort): %s",
			p.GetIndex(), strings.Join(inconclusive, "; ")), evs...); err != nil {
			return err
		}
		rn.pausedPhase = p.GetIndex()
		return nil
	}
	if rehearses(r, p) {
		return o.startRehearsal(ctx, rn, r, p, views, evs, len(results))
	}
	return o.setPhase(ctx, r, p, phVerified, fmt.Sprintf("bake of %s passed %d gate(s)", sattime.Millis(p.GetBakeMs()), len(results)), time.Time{}, evs...)
}

// inDoubt reports whether a host of the phase counted healthy, and not
// (yet) unreachable, has no session with this leader now, or an open
// session that carried nothing for more than half of UnreachableAfter (a
// cut link leaves the session open and silent until the coordinator's
// silence timeout closes it; heartbeats come every 2 s by default). The
// wait this causes ends when the host speaks again or, once its session
// is closed, when it counts as unreachable; for an agent configured with
// slow heartbeats, at its next heartbeat.
func (o *Orchestrator) inDoubt(views []hostView, now time.Time) bool {
	for _, v := range views {
		if v.status != hostHealthy || v.unreachable {
			continue
		}
		if !o.agents.Connected(v.host) {
			return true
		}
		if _, last, ok := o.agents.Heartbeat(v.host); ok && now.Sub(last) > o.cfg.UnreachableAfter/2 {
			return true
		}
	}
	return false
}

// recordUnreachableAtBake writes one host.unreachable event for each host
// that was healthy when last heard of but is unreachable at the bake
// deadline: it counts against max_unreachable in the readings that
// follow, and this is its evidence. The assignment is left as it is: the
// host reports what it did (reverted_isolated, or still healthy) when it
// is back.
func (o *Orchestrator) recordUnreachableAtBake(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) error {
	var evs []*rollwavev1.Event
	var keys []string
	for _, v := range views {
		if v.status != hostHealthy || !v.unreachable {
			continue
		}
		key := hostGenKey(v.host, v.a.GetGeneration())
		if rn.hostLogged[key] {
			continue
		}
		e := ev(r, p.GetIndex(), "host.unreachable",
			fmt.Sprintf("host %s unreachable at the bake deadline, counted against max_unreachable: %s (last reported %s)", v.host, v.reason, stateName(v.a.GetState())),
			map[string]string{"reason": v.reason, "generation": fmt.Sprint(v.a.GetGeneration()), "last_state": stateName(v.a.GetState())})
		e.Host = v.host
		evs = append(evs, e)
		keys = append(keys, key)
	}
	if err := o.events(ctx, evs...); err != nil {
		return err
	}
	for _, k := range keys {
		rn.hostLogged[k] = true
	}
	return nil
}

// awaitingMetrics reports whether a healthy host has not sent this leader
// a heartbeat yet while the leader is younger than UnreachableAfter: right
// after a failover the gates would otherwise read "no data".
func (o *Orchestrator) awaitingMetrics(views []hostView) bool {
	o.mu.Lock()
	young := o.now().Sub(o.enabledAt) < o.cfg.UnreachableAfter
	o.mu.Unlock()
	if !young {
		return false
	}
	for _, v := range views {
		if v.status != hostHealthy {
			continue
		}
		if _, _, ok := o.agents.Heartbeat(v.host); !ok {
			return true
		}
	}
	return false
}

// failPhase fails the phase with every gate reading (the failing ones as
// gate.failed) in the same entry; the next step applies the rollback policy.
func (o *Orchestrator) failPhase(ctx context.Context, r *rollwavev1.Release, p *rollwavev1.Phase, results []gateResult) error {
	var evs []*rollwavev1.Event
	var details []string
	for _, g := range results {
		evs = append(evs, gateEvent(r, p.GetIndex(), g))
		if !g.Passed && !g.inconclusive {
			details = append(details, g.Detail)
		}
	}
	return o.setPhase(ctx, r, p, phFailed, "gate failed: "+strings.Join(details, "; "), time.Time{}, evs...)
}

func (o *Orchestrator) applyPolicy(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase) error {
	policy := r.GetSpec().GetRollback().GetOnFailure()
	if policy == "" {
		policy = PolicyAll
	}
	why := fmt.Sprintf("phase %d failed (%s); rollback.on_failure = %s", p.GetIndex(), p.GetReason(), policy)
	if policy == PolicyFailLocal && p.GetRegion() != "" {
		return o.failRegion(ctx, r, p, why)
	}
	switch policy {
	case PolicyPhase:
		// Only this phase's switched hosts go back; the release waits
		// for a human (rollback reverts the rest, abort keeps them).
		var live []*rollwavev1.Assignment
		for _, a := range o.liveAssignments(r) {
			if a.GetPhase() == p.GetIndex() {
				live = append(live, a)
			}
		}
		if _, _, err := o.orderReverts(ctx, rn, r, p.GetIndex(), live, why); err != nil {
			return err
		}
		return o.setRelease(ctx, r, relPaused, why+"; the phase's hosts were ordered to revert; rollback or abort next")
	case PolicyPause:
		return o.setRelease(ctx, r, relPaused, why+"; rollback or abort next")
	default:
		return o.setRelease(ctx, r, relRollingBack, why)
	}
}

func (o *Orchestrator) afterVerified(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase) error {
	idx := p.GetIndex()
	if err := o.verifiedHousekeeping(ctx, rn, r, p); err != nil {
		return err
	}
	if p.GetApprovalRequired() && !p.GetApproved() {
		return o.setRelease(ctx, r, relAwaiting, fmt.Sprintf("phase %d verified; waiting for approval (rollwave release approve %s)", idx, r.GetId()))
	}
	if rg := r.GetRegions(); len(rg) > 0 && idx+1 == rg[0].GetFirstPhase() {
		// The shared phases are done: each region goes on with its
		// own; the release's current phase stays the last shared one.
		return o.stepRegions(ctx, rn, r)
	}
	if int(idx)+1 < len(r.GetPhases()) {
		return o.w.AdvancePhase(ctx, &rollwavev1.SetReleaseStateCommand{
			TimeUnixNano: o.now().UnixNano(), ReleaseId: r.GetId(), CurrentPhase: idx + 1, Actor: Actor,
			Reason: fmt.Sprintf("phase %d verified", idx),
		})
	}
	if watchOf(r) > 0 {
		// The hosts keep their old slots: no finalize until the
		// watch ends.
		return o.startWatch(ctx, r)
	}
	return o.finalize(ctx, rn, r)
}

// verifiedHousekeeping tells a verified phase's hosts (once per leader) so
// that they no longer revert on a loss of contact, and records a skipped
// bake once.
func (o *Orchestrator) verifiedHousekeeping(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase) error {
	idx := p.GetIndex()
	if !rn.verifiedSent[idx] {
		app := r.GetSpec().GetApp()
		for i, a := range o.phaseAssignments(r, p) {
			if a != nil && a.GetReleaseId() == r.GetId() && !raftfsm.AssignmentEnded(a.GetState()) {
				o.agents.NotifyVerified(p.GetHosts()[i], app, a.GetGeneration())
			}
		}
		rn.verifiedSent[idx] = true
	}
	// The FSM keeps bake_skipped only on a baking transition; a promote
	// (baking -> verified with bake_skipped) shows as a phase verified
	// before its bake deadline, which the orchestrator itself never does.
	skipped := p.GetBakeSkipped() || p.GetFinishedUnixNano() < p.GetBakeDeadlineUnixNano()
	if skipped && !rn.skipLogged[idx] {
		if !o.hasEvent(r.GetId(), idx, "phase.bake_skipped") {
			left := time.Duration(p.GetBakeDeadlineUnixNano()-p.GetFinishedUnixNano()) * time.Nanosecond
			if err := o.events(ctx, ev(r, idx, "phase.bake_skipped",
				fmt.Sprintf("phase %d promoted without its bake (emergency path): %s", idx, p.GetReason()),
				map[string]string{"bake_ms": fmt.Sprint(p.GetBakeMs()), "bake_left": left.Round(time.Millisecond).String(), "reason": p.GetReason()})); err != nil {
				return err
			}
		}
		rn.skipLogged[idx] = true
	}
	return nil
}

func (o *Orchestrator) hasEvent(releaseID string, phase int32, kind string) bool {
	for _, e := range o.state.Events(releaseID, 0, 0) {
		if e.GetKind() == kind && e.GetPhase() == phase {
			return true
		}
	}
	return false
}

// finalize tells every healthy host of the release to finalize, waits
// (bounded) for them, and ends the release as succeeded.
func (o *Orchestrator) finalize(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	now := o.now()
	var waiting []string
	finalized, failed, unreachable := 0, 0, 0
	// With parallel regions, the hosts of a region that was rolled back
	// on its own (fail_local) are not finalized: reverted, or still
	// waiting to be.
	live, partial := o.finalizable(r)
	for _, a := range live {
		if cutOff(a) {
			unreachable++
			continue
		}
		switch a.GetState() {
		case asHealthy:
			if _, ok := o.unreachableFor(a.GetHost(), now); ok {
				// Counted unreachable at its bake deadline (or cut
				// off since): no finalize order can reach it, so
				// waiting FinalizeTimeout for it would only delay
				// the release. It reports what it did when back.
				unreachable++
				continue
			}
			waiting = append(waiting, a.GetHost())
			o.orderFinalize(rn, a, now)
		case asFinalized:
			finalized++
		default:
			failed++
		}
	}
	if rn.finalizeStart.IsZero() {
		rn.finalizeStart = now
		if len(waiting) > 0 {
			if err := o.events(ctx, ev(r, r.GetCurrentPhase(), "release.finalizing",
				fmt.Sprintf("every phase verified; finalizing %d host(s)", len(waiting)),
				map[string]string{"hosts": strings.Join(waiting, ",")})); err != nil {
				return err
			}
		}
	}
	timedOut := now.Sub(rn.finalizeStart) > o.cfg.FinalizeTimeout
	if len(waiting) > 0 && !timedOut {
		return nil
	}
	reason := fmt.Sprintf("every phase verified; %d host(s) finalized, %d failed and %d unreachable during the rollout", finalized, failed, unreachable)
	if unreachable > 0 {
		reason += " (unreachable hosts are drifted: they converge to this release later)"
	}
	if len(waiting) > 0 {
		reason += fmt.Sprintf(", %d not finalized within %s: %s", len(waiting), o.cfg.FinalizeTimeout, strings.Join(waiting, ","))
	}
	if partial != "" {
		return o.setRelease(ctx, r, relPartial, partial+"; "+reason)
	}
	if r.GetState() == relWatching {
		start, until := watchSpan(r)
		msg := fmt.Sprintf("post_rollout watch of %s ended at %s with no gate failure; old slots stopped", until.Sub(start), until.UTC().Format(time.RFC3339))
		evs := []*rollwavev1.Event{ev(r, r.GetCurrentPhase(), "release.watch_ended", msg,
			map[string]string{"watch": until.Sub(start).String(), "watch_until": timeRFC(until)})}
		for _, g := range rn.watchFinal {
			evs = append(evs, gateEvent(r, r.GetCurrentPhase(), g))
		}
		return o.setRelease(ctx, r, relSucceeded, msg+"; "+reason, evs...)
	}
	return o.setRelease(ctx, r, relSucceeded, reason)
}

// orderFinalize sends a the finalize order when it is due: at once the
// first time, again FinalizeResend after an order its host's session did
// not take, and with a doubling wait (up to 8 × FinalizeResend) after one
// it took. A host that took the order has most likely finalized and its
// report waits for raft: at 10,000 hosts the last reports commit seconds
// after the orders, and resending every 2 s made every waiting host
// finalize and report again, adding to the very queue it waited on. The
// orders are idempotent; a lost one (a session that broke) is sent again
// within the bounded wait, well inside FinalizeTimeout.
func (o *Orchestrator) orderFinalize(rn *run, a *rollwavev1.Assignment, now time.Time) {
	h := a.GetHost()
	if sent, ok := rn.finalizeSent[h]; ok && now.Sub(sent) < max(rn.finalizeWait[h], o.cfg.FinalizeResend) {
		return
	}
	rn.finalizeSent[h] = now
	if !o.agents.OrderFinalize(h, a.GetApp(), a.GetGeneration()) {
		rn.finalizeWait[h] = o.cfg.FinalizeResend
		return
	}
	if w := rn.finalizeWait[h]; w > 0 {
		rn.finalizeWait[h] = min(2*w, 8*o.cfg.FinalizeResend)
	} else {
		rn.finalizeWait[h] = o.cfg.FinalizeResend
	}
}

// cutOff reports whether an assignment ended because its host was cut
// off: reverted on its own (reverted_isolated) or unreachable past its
// deadline.
func cutOff(a *rollwavev1.Assignment) bool {
	return a.GetState() == asIsolated || (a.GetState() == asFailed && strings.HasPrefix(a.GetReason(), unreachableReason))
}

// ---------------------------------------------------------------- rollback

// liveAssignments returns the current assignment of each host that this
// release assigned (one per host).
func (o *Orchestrator) liveAssignments(r *rollwavev1.Release) []*rollwavev1.Assignment {
	return o.state.LiveAssignments(r.GetId())
}

// servesVersion reports whether the host's active slot for app runs
// version, from its latest heartbeat, else from the slot facts in raft.
// Unknown counts as yes: a needless revert order is harmless, a missed one
// is not.
func (o *Orchestrator) servesVersion(host, app, version string) bool {
	if hb, _, ok := o.agents.Heartbeat(host); ok {
		for _, s := range hb.GetSlots() {
			if s.GetApp() == app {
				return s.GetVersion() == version
			}
		}
	}
	if h := o.state.Host(host); h != nil {
		for _, f := range h.GetApps() {
			if f.GetApp() != app {
				continue
			}
			switch f.GetActive() {
			case rollwavev1.Slot_SLOT_BLUE:
				return f.GetBlueVersion() == version
			case rollwavev1.Slot_SLOT_GREEN:
				return f.GetGreenVersion() == version
			}
		}
	}
	return true
}

// hasOldVersion reports whether the host's other slot holds a version to
// go back to (raft's slot facts, as the agent reported them). Unknown facts
// count as yes: the agent decides.
func (o *Orchestrator) hasOldVersion(host, app, version string) bool {
	h := o.state.Host(host)
	if h == nil {
		return true
	}
	for _, f := range h.GetApps() {
		if f.GetApp() != app {
			continue
		}
		var other string
		switch f.GetActive() {
		case rollwavev1.Slot_SLOT_BLUE:
			other = f.GetGreenVersion()
		case rollwavev1.Slot_SLOT_GREEN:
			other = f.GetBlueVersion()
		default:
			return true
		}
		return other != "" && other != version
	}
	return true
}

// untouchedReasons start the reason of an assignment the agent failed
// before touching a slot (internal/agent/worker.go): refused by the
// host's local policy or its freeze calendar (a window the agent knows of
// holds the swap), or an order it could not persist. Such a host
// serves what it served before; there is nothing to revert, and a revert
// order for a generation it never took is ignored, so waiting for it would
// only run out RevertTimeout.
var untouchedReasons = []string{"refused by the host's local policy", "refused by the host's freeze calendar", "agent cannot persist the order"}

// untouched reports whether a failed assignment never touched the host.
func untouched(a *rollwavev1.Assignment) bool {
	if a.GetState() != asFailed {
		return false
	}
	for _, p := range untouchedReasons {
		if strings.HasPrefix(a.GetReason(), p) {
			return true
		}
	}
	return false
}

// orderReverts orders back every assignment in live that switched to the
// new version and has not reverted yet; it returns the hosts still on
// their way back and those that could not be reverted.
func (o *Orchestrator) orderReverts(ctx context.Context, rn *run, r *rollwavev1.Release, phase int32, live []*rollwavev1.Assignment, reason string) (waiting, stuck []string, err error) {
	var order []*rollwavev1.Assignment
	version := r.GetSpec().GetVersion()
	for _, a := range live {
		key := hostGenKey(a.GetHost(), a.GetGeneration())
		if untouched(a) {
			continue // refused before touching anything: nothing to revert
		}
		switch a.GetState() {
		case asSwitched, asBaking, asHealthy, asFailed:
			// A host that switched on the app's first deploy has no old
			// version to go back to: waiting for it would only run out
			// the revert timeout.
			if o.servesVersion(a.GetHost(), a.GetApp(), version) && !o.hasOldVersion(a.GetHost(), a.GetApp(), version) {
				stuck = append(stuck, a.GetHost()+" (first deploy of the app: no old version to revert to)")
				continue
			}
		}
		switch a.GetState() {
		case asAssigned, asStaging, asSwitched, asBaking, asHealthy:
			order = append(order, a)
		case asFailed:
			if !o.servesVersion(a.GetHost(), a.GetApp(), version) {
				continue // failed before switching: the old version serves
			}
			if rn.revertTries[key] >= o.cfg.RevertAttempts {
				stuck = append(stuck, a.GetHost())
				continue
			}
			order = append(order, a)
		case asReverting:
			// An agent that never received its assignment ignores the
			// revert order of that generation; once it is connected and
			// shows the old version for a while, it is back.
			ordered, ok := rn.revertOrderedAt[key]
			if !ok {
				ordered = rn.revertStart
			}
			if !ordered.IsZero() && o.now().Sub(ordered) > o.cfg.RevertSettle && o.agents.Connected(a.GetHost()) &&
				!o.servesVersion(a.GetHost(), a.GetApp(), version) {
				continue
			}
			waiting = append(waiting, a.GetHost())
		case asFinalized:
			stuck = append(stuck, a.GetHost()) // its old slot is gone
		}
	}
	if len(order) == 0 {
		return waiting, stuck, nil
	}
	var hosts []string
	for _, a := range order {
		hosts = append(hosts, a.GetHost())
	}
	if err := o.events(ctx, ev(r, phase, "revert.ordered",
		fmt.Sprintf("reverting %d host(s): %s", len(hosts), reason),
		map[string]string{"hosts": strings.Join(hosts, ","), "reason": reason})); err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, a := range order {
		rn.revertTries[hostGenKey(a.GetHost(), a.GetGeneration())]++
		rn.revertOrderedAt[hostGenKey(a.GetHost(), a.GetGeneration())] = o.now()
		if err := o.agents.OrderRevert(a.GetHost(), a.GetApp(), a.GetGeneration(), reason); err != nil {
			errs = append(errs, fmt.Errorf("revert %s: %w", a.GetHost(), err))
			continue
		}
		waiting = append(waiting, a.GetHost())
	}
	return waiting, stuck, errors.Join(errs...)
}

// stepRollback reverts every host this release switched and ends the
// release rolled_back, or failed when hosts could not be reverted in time.
func (o *Orchestrator) stepRollback(ctx context.Context, rn *run, r *rollwavev1.Release) error {
	now := o.now()
	if rn.revertStart.IsZero() {
		rn.revertStart = now
	}
	waiting, stuck, err := o.orderReverts(ctx, rn, r, r.GetCurrentPhase(), o.liveAssignments(r), "release "+r.GetId()+" rolling back: "+r.GetReason())
	if err != nil {
		return err
	}
	slices.Sort(waiting)
	if len(waiting) > 0 {
		if now.Sub(rn.revertStart) <= o.cfg.RevertTimeout {
			return nil
		}
		stuck = append(stuck, waiting...)
	}
	reverted := 0
	var refused []string
	for _, a := range o.liveAssignments(r) {
		if a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED || a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
			reverted++
		}
		if untouched(a) {
			refused = append(refused, fmt.Sprintf("%s (%s)", a.GetHost(), a.GetReason()))
		}
	}
	slices.Sort(refused)
	note := ""
	if len(refused) > 0 {
		note = fmt.Sprintf("; %d host(s) never took the release, nothing to revert there: %s", len(refused), strings.Join(refused, "; "))
	}
	if len(stuck) > 0 {
		return o.setRelease(ctx, r, relFailed, fmt.Sprintf("rollback incomplete: %d host(s) reverted, %d not: %s%s", reverted, len(stuck), strings.Join(stuck, ","), note))
	}
	return o.setRelease(ctx, r, relRolledBack, fmt.Sprintf("%d host(s) reverted to the old version in %s%s", reverted, now.Sub(rn.revertStart).Round(time.Millisecond), note))
}

// stateName turns RELEASE_STATE_ROLLING_BACK into "rolling_back".
func stateName(e fmt.Stringer) string {
	n := e.String()
	if _, after, ok := strings.Cut(n, "STATE_"); ok {
		n = after
	}
	return strings.ToLower(n)
}
