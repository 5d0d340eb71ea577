package slot

import (
	"context"
	"fmt"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Revert steps, in order; crash points "revert/<step>/begin|done".
const (
	StepStartOld   = "start_old"   // install the old slot's unit from the state file, start it, require it running
	StepSwitchBack = "switch_back" // point traffic at the old slot
	StepStopNew    = "stop_new"    // stop the new slot → REVERTED / REVERTED_ISOLATED
)

// Revert takes the app back to the slot that served before its newest
// swap: bring the old slot up if it is down, switch traffic back, stop the
// new slot. It reports REVERTING, then REVERTED (or REVERTED_ISOLATED when
// isolated: the agent decided alone after losing the leader). It needs
// only the state file, so it works without a coordinator and after a
// restart.
//
// If the old slot cannot be started, traffic stays on the new slot (a host
// is never left without a serving slot) and FAILED is reported. A swap that
// failed before its switch has nothing to move back: Revert makes sure the
// new slot is stopped and reports REVERTED. Reverting a reverted
// generation is a no-op; an isolated revert of a verified phase is refused
// with ErrVerified.
func (m *Manager) Revert(ctx context.Context, app string, reason string, isolated bool) error {
	return m.RevertChecked(ctx, app, reason, isolated, nil)
}

// RevertChecked is Revert whose start_old step also requires ready (the
// agent's health checks on the old slot's port) to pass: a revert counts
// only when the old slot serves again, not when its unit merely runs. If
// ready fails, traffic stays where it is and FAILED is recorded with the
// reason; calling RevertChecked again retries from the start.
func (m *Manager) RevertChecked(ctx context.Context, app string, reason string, isolated bool, ready ReadyFunc) error {
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("revert: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	log := m.log.With("app", app, "generation", st.Generation)
	if st.Op != nil && st.Op.Kind == OpSwap {
		return fmt.Errorf("revert %s: %w (swap of generation %d at step %s)", app, ErrBusy, st.Op.Generation, st.Op.Step)
	}
	if st.Generation == 0 {
		return fmt.Errorf("revert %s: %w: no swap recorded", app, ErrNothingToRevert)
	}
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
		if st.Op == nil {
			log.Info("already reverted", "state", st.Phase)
			return nil
		}
	}
	if isolated && st.Verified {
		return fmt.Errorf("revert %s generation %d: %w", app, st.Generation, ErrVerified)
	}
	if st.Op == nil {
		if st.Active != st.To || st.From == st.To {
			// Traffic never moved (the swap failed before its switch, or
			// was refused outright).
			log.Info("revert: traffic never left the old slot; making sure the new slot is stopped", "slot", st.To, "reason", reason)
			if st.To.Valid() && st.To != st.Active {
				if err := m.cfg.Driver.Stop(ctx, app, st.To); err != nil {
					return fmt.Errorf("revert %s: stop %s: %w", app, st.To, err)
				}
			}
			return m.setResult(rt, st.Generation, revertedState(isolated), reason)
		}
		if st.From == "" {
			return fmt.Errorf("revert %s generation %d: %w: first deploy of the app, no old slot", app, st.Generation, ErrNothingToRevert)
		}
		if err := m.beginRevert(rt, reason, isolated); err != nil {
			return err
		}
	}
	return m.runRevert(ctx, rt, ready)
}

// beginRevert records a revert of the generation's swap (traffic goes
// back from st.To to st.From) as the operation in flight, and REVERTING
// (reported unless the revert is isolated).
func (m *Manager) beginRevert(rt *appRT, reason string, isolated bool) error {
	st := rt.st
	st.Op = &Operation{Kind: OpRevert, Generation: st.Generation, From: st.To, To: st.From,
		StartedAt: m.cfg.Clock(), Reason: reason, Isolated: isolated}
	m.log.Warn("reverting", "app", rt.name, "generation", st.Generation, "from", st.To, "slot", st.From, "reason", reason, "isolated", isolated)
	// An isolated revert is recorded, not reported: an isolated agent has
	// no session to report on, and a REVERTING queued (or left in a socket
	// buffer) until the link heals would reach the leader ahead of the
	// REVERTED_ISOLATED that follows it and read as a host reverting
	// because it failed, counted against max_failed_hosts instead of
	// max_unreachable. The leader learns the outcome: REVERTED_ISOLATED,
	// or FAILED when the old slot cannot start.
	rt.st.setResult(st.Generation, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING, reason, m.cfg.Clock())
	err := m.save(rt)
	if !isolated {
		m.report(rt.name, st.Generation, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING, reason)
	}
	if err != nil {
		return fmt.Errorf("revert %s: %w", rt.name, err)
	}
	return nil
}

func revertedState(isolated bool) rollwavev1.AssignmentState {
	if isolated {
		return rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED
	}
	return rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED
}

// runRevert runs (or, after a restart, re-runs) the revert in st.Op. Every
// step is idempotent, so re-running from the first one is safe.
func (m *Manager) runRevert(ctx context.Context, rt *appRT, ready ReadyFunc) error {
	st := rt.st
	op := st.Op
	oldSlot, newSlot := op.To, op.From
	log := m.log.With("app", rt.name, "generation", op.Generation)
	old := st.Slots[oldSlot]
	if old == nil || old.Unit == nil {
		return m.failRevert(rt, StepStartOld, fmt.Errorf("old slot %s has no unit in the state file", oldSlot))
	}
	if err := m.revertHook(ctx, rt, StepPreRevert); err != nil {
		return err
	}
	err := m.runStep(rt, StepStartOld, false, func() error {
		return m.startChecked(ctx, rt.name, oldSlot, old, ready)
	})
	if err != nil {
		if ctx.Err() != nil && !isCrash(err) {
			// Shutdown: the revert stays recorded and is completed at the
			// next start (Reconcile); it did not fail.
			return fmt.Errorf("revert %s at step %s: %w", rt.name, StepStartOld, ErrInterrupted)
		}
		return m.failRevert(rt, StepStartOld, err)
	}
	err = m.runStep(rt, StepSwitchBack, false, func() error {
		if err := m.point(ctx, rt, st.Traffic, oldSlot, old.Port); err != nil {
			return err
		}
		st.Active = oldSlot
		return nil
	})
	if err != nil {
		return m.failRevert(rt, StepSwitchBack, err)
	}
	if err := m.revertHook(ctx, rt, StepPostRevert); err != nil {
		return err
	}
	final := revertedState(op.Isolated)
	err = m.runStep(rt, StepStopNew, true, func() error {
		if err := m.cfg.Driver.Stop(ctx, rt.name, newSlot); err != nil {
			// Traffic is back on the old slot; the revert stands.
			log.Error("revert: stopping the new slot failed", "slot", newSlot, "error", err)
		}
		st.setResult(op.Generation, final, op.Reason, m.cfg.Clock())
		return nil
	})
	if err != nil {
		return m.failRevert(rt, StepStopNew, err)
	}
	log.Warn("reverted", "slot", oldSlot, "stopped", newSlot, "state", final.String())
	m.reportMoved(rt.name, op.Generation, final, op.Reason, SwitchEvidence(st, newSlot, oldSlot))
	return nil
}

// revertHook runs a pre_revert or post_revert hook as a step of the
// revert in flight. Its failure never stops the revert: it is noted in
// the revert's reason (and so in REVERTED's). It returns an error only
// when the revert must stop here: a crash point, or the agent shutting
// down (the revert stays recorded and is completed at the next start).
func (m *Manager) revertHook(ctx context.Context, rt *appRT, name string) error {
	_, err := m.runHookStep(ctx, rt, name)
	switch {
	case err == nil:
		return nil
	case isCrash(err):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("revert %s at step %s: %w", rt.name, name, ErrInterrupted)
	}
	m.log.Warn("revert goes on despite the failed hook", "app", rt.name, "hook", name, "error", err)
	rt.st.Op.Reason = noteHookFailure(rt.st.Op.Reason, err)
	return nil
}

// failRevert ends a revert that could not complete. Traffic is left where
// it is (on the new slot unless the switch back already happened), so
// something keeps serving; FAILED is recorded.
func (m *Manager) failRevert(rt *appRT, step string, cause error) error {
	if isCrash(cause) {
		return cause
	}
	st := rt.st
	gen := st.Generation
	m.log.Error("revert failed; traffic stays where it is", "app", rt.name, "generation", gen, "step", step,
		"serving", st.Active, "error", cause)
	st.Op = nil
	if err := m.setResult(rt, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED,
		fmt.Sprintf("revert: %s: %v (still serving %s)", step, cause, st.Active)); err != nil {
		m.log.Error("persisting the failure failed", "app", rt.name, "error", err)
	}
	return fmt.Errorf("revert %s generation %d failed: %s: %w", rt.name, gen, step, cause)
}

// Finalize ends generation gen's bake: the old slot is stopped (if it was
// kept hot), its files stay, and FINALIZED is reported. Finalizing a
// finalized generation is a no-op.
func (m *Manager) Finalize(ctx context.Context, app string, gen uint64) error {
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	if err := checkGen(app, st, gen); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	if st.PhaseState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED {
		return nil
	}
	if err := checkLive(app, st, gen, "finalize"); err != nil {
		return err
	}
	var note string
	if st.Split != nil {
		// Never finalized mid-step (the agent reports healthy at 100 %),
		// but should it be: the old slot stops now, so nothing may go there.
		if err := m.point(ctx, rt, st.Traffic, st.Active, m.slotPort(st, st.Active)); err != nil {
			return fmt.Errorf("finalize %s: end the weighted step: %w", app, err)
		}
	}
	if st.From != "" {
		if st.KeepOld != "cold" {
			// The hot old slot may still finish work: drain it first
			// (keep_old = cold drained it before stopping it at the
			// switch). A failure is reported; the old slot stops anyway.
			if err := m.runDrain(ctx, rt, OpFinalize); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("finalize %s: %w", app, ErrInterrupted)
				}
				note = noteHookFailure("", err) + "; old slot stopped anyway"
			}
		}
		if err := m.cfg.Driver.Stop(ctx, app, st.From); err != nil {
			return fmt.Errorf("finalize %s: stop old slot %s: %w", app, st.From, err)
		}
	}
	m.log.Info("finalized", "app", app, "generation", gen, "slot", st.Active, "old_slot", st.From)
	return m.setResult(rt, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, note)
}

// checkLive refuses what on generation gen unless it is live (switched,
// baking or healthy) with no operation in flight.
func checkLive(app string, st *State, gen uint64, what string) error {
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
	default:
		return fmt.Errorf("%s %s generation %d: %w: %s", what, app, gen, ErrWrongState, st.Phase)
	}
	if st.Op != nil {
		return fmt.Errorf("%s %s generation %d: %w", what, app, gen, ErrBusy)
	}
	return nil
}

// StopOld stops the old slot of generation gen, kept hot so far, while
// the generation stays live (post_rollout.keep_old = "stopped": a verified
// host waits for the end of the release's watch with its old slot
// stopped, its files kept). From then on the state says keep_old "cold",
// so a restarted agent leaves it stopped, and Revert starts it again
// before switching back. A no-op when it is stopped already.
func (m *Manager) StopOld(ctx context.Context, app string, gen uint64) error {
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("stop old slot: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	if err := checkGen(app, st, gen); err != nil {
		return fmt.Errorf("stop old slot: %w", err)
	}
	if err := checkLive(app, st, gen, "stop old slot of"); err != nil {
		return err
	}
	if st.KeepOld == "cold" || st.From == "" {
		return nil
	}
	if err := m.cfg.Driver.Stop(ctx, app, st.From); err != nil {
		return fmt.Errorf("stop old slot %s of %s: %w", st.From, app, err)
	}
	st.KeepOld = "cold"
	m.log.Info("old slot stopped for the post_rollout watch", "app", app, "generation", gen, "old_slot", st.From)
	return m.save(rt)
}

// MarkVerified records that generation gen's phase was verified: from now
// on an isolated agent keeps the new slot instead of reverting.
func (m *Manager) MarkVerified(app string, gen uint64) error {
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("mark verified: %w", err)
	}
	defer rt.mu.Unlock()
	if err := checkGen(app, rt.st, gen); err != nil {
		return fmt.Errorf("mark verified: %w", err)
	}
	if rt.st.Verified {
		return nil
	}
	rt.st.Verified = true
	return m.save(rt)
}

// MarkHealthy records that the agent's health tracking found generation
// gen healthy (BAKING/SWITCHED → HEALTHY) and reports it.
//
// note, when not empty, is reported as the reason with HEALTHY: the
// evidence of what the host passed on its own (a dark phase).
func (m *Manager) MarkHealthy(app string, gen uint64, note string) error {
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("mark healthy: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	if err := checkGen(app, st, gen); err != nil {
		return fmt.Errorf("mark healthy: %w", err)
	}
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
		return nil
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING:
		return m.setResult(rt, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, note)
	}
	return fmt.Errorf("mark healthy %s generation %d: %w: %s", app, gen, ErrWrongState, st.Phase)
}

func checkGen(app string, st *State, gen uint64) error {
	switch {
	case gen < st.Generation:
		return fmt.Errorf("%s: %w: generation %d, host is at %d", app, ErrStaleGeneration, gen, st.Generation)
	case gen > st.Generation:
		return fmt.Errorf("%s: generation %d unknown here (host is at %d): %w", app, gen, st.Generation, ErrWrongState)
	}
	return nil
}
