package slot

import (
	"context"
	"errors"
	"fmt"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// OpRehearse is a rollback rehearsal in flight (rollback.rehearse).
const OpRehearse = "rehearse"

// Rehearsal steps, in order; crash points "rehearse/<step>/begin|done".
const (
	// StepRehearseStartOld installs and starts the old slot and waits
	// until it passes the health checks, within max_rollback_time.
	StepRehearseStartOld = "rehearse_start_old"
	// StepRehearseSwitchBack points traffic at the old slot; the rollback
	// time is measured when it is done.
	StepRehearseSwitchBack = "rehearse_switch_back"
	// StepRehearseForward makes sure the new slot runs and passes its
	// checks, points traffic at it again and (keep_old = cold) stops the
	// old slot: the host is as before the rehearsal.
	StepRehearseForward = "rehearse_forward"
)

// Rehearsal is how a rollback rehearsal of one generation went. It is
// kept in the state file, so a repeated order (or a restarted agent)
// answers with it instead of rehearsing again.
type Rehearsal struct {
	Generation uint64 `json:"generation"`
	// OK: the old slot came back healthy and serving within
	// max_rollback_time and the host rolled forward again.
	OK bool `json:"ok"`
	// RollbackMS: from the start of the rehearsal to the old slot healthy
	// and serving; 0 when it never got there.
	RollbackMS int64 `json:"rollback_ms"`
	// MaxRollbackMS is the limit it was held to.
	MaxRollbackMS int64 `json:"max_rollback_ms"`
	// Reason says why it failed, or what was skipped; empty when OK.
	Reason string `json:"reason,omitempty"`
	// RolledForward: traffic is on the new slot again.
	RolledForward bool      `json:"rolled_forward"`
	OldVersion    string    `json:"old_version,omitempty"`
	NewVersion    string    `json:"new_version,omitempty"`
	Time          time.Time `json:"time"`
}

// Proto converts the rehearsal for the agent's report.
func (r Rehearsal) Proto(app string) *rollwavev1.RehearsalResult {
	return &rollwavev1.RehearsalResult{
		App: app, Generation: r.Generation, Ok: r.OK, RollbackMs: r.RollbackMS, Reason: r.Reason,
		TimeUnixNano: r.Time.UnixNano(), OldVersion: r.OldVersion, NewVersion: r.NewVersion,
		RolledForward: r.RolledForward,
	}
}

// Rehearse rehearses the rollback of generation gen for real: the old slot
// is started (it may be cold) and must pass ready within maxRollback, then
// traffic goes back to it — the time from the start to here is the
// rollback time — and then forward again to the new slot (started and
// checked again if it went down). The new slot keeps running throughout,
// so rolling forward is one switch. No assignment state changes: the
// generation stays SWITCHED/BAKING/HEALTHY.
//
// A rehearsal whose old slot cannot start or serve leaves traffic on the
// new slot and is recorded as failed; one that took longer than
// maxRollback is failed too (it still rolls forward). A rehearsal is done
// once per generation: asking again returns the recorded result. The first
// deploy of an app has no old slot; its rehearsal is skipped (OK, with the
// reason). An error is returned only when nothing was rehearsed (wrong
// generation or state, the state file unwritable) or the agent is shutting
// down (ErrInterrupted; Reconcile rolls forward at the next start).
func (m *Manager) Rehearse(ctx context.Context, app string, gen uint64, maxRollback time.Duration, ready ReadyFunc) (Rehearsal, error) {
	if maxRollback <= 0 {
		return Rehearsal{}, fmt.Errorf("rehearse %s: max rollback time must be positive, got %s", app, maxRollback)
	}
	rt, err := m.lock(app)
	if err != nil {
		return Rehearsal{}, fmt.Errorf("rehearse: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	if err := checkGen(app, st, gen); err != nil {
		return Rehearsal{}, fmt.Errorf("rehearse: %w", err)
	}
	if r := st.Rehearsal; r != nil && r.Generation == gen {
		return *r, nil
	}
	if st.Op != nil {
		return Rehearsal{}, fmt.Errorf("rehearse %s generation %d: %w (%s at step %s)", app, gen, ErrBusy, st.Op.Kind, st.Op.Step)
	}
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
	default:
		return Rehearsal{}, fmt.Errorf("rehearse %s generation %d: %w: %s", app, gen, ErrWrongState, st.Phase)
	}
	rec := Rehearsal{Generation: gen, MaxRollbackMS: maxRollback.Milliseconds()}
	if st.Active != st.To {
		return Rehearsal{}, fmt.Errorf("rehearse %s generation %d: %w: slot %s serves, not the new slot %s", app, gen, ErrWrongState, st.Active, st.To)
	}
	if st.From == "" || st.From == st.To {
		rec.OK, rec.RolledForward = true, true
		rec.Reason = "skipped: first deploy of the app, no old slot to roll back to"
		return rec, m.recordRehearsal(rt, rec)
	}
	oldSlot, newSlot := st.From, st.To
	old, cur := st.Slots[oldSlot], st.Slots[newSlot]
	if old == nil || old.Unit == nil || cur == nil {
		rec.Reason = fmt.Sprintf("old slot %s has no unit in the state file", oldSlot)
		return rec, m.recordRehearsal(rt, rec)
	}
	rec.OldVersion, rec.NewVersion = old.Version, cur.Version
	log := m.log.With("app", app, "generation", gen, "old_slot", oldSlot, "new_slot", newSlot)
	log.Warn("rehearsing the rollback", "old_version", old.Version, "max_rollback_time", maxRollback)

	st.Op = &Operation{Kind: OpRehearse, Generation: gen, From: newSlot, To: oldSlot, StartedAt: m.cfg.Clock(),
		Reason: "rollback rehearsal"}
	began := time.Now() // monotonic
	err = m.runStep(rt, StepRehearseStartOld, false, func() error {
		rctx, cancel := context.WithTimeout(ctx, maxRollback)
		defer cancel()
		err := m.startChecked(rctx, rt.name, oldSlot, old, ready)
		if err != nil && ctx.Err() == nil && rctx.Err() != nil {
			return fmt.Errorf("old slot %s (version %s) not healthy within max_rollback_time %s: %w", oldSlot, old.Version, maxRollback, err)
		}
		return err
	})
	if err == nil {
		err = m.runStep(rt, StepRehearseSwitchBack, false, func() error {
			if err := m.point(ctx, rt, st.Traffic, oldSlot, old.Port); err != nil {
				return err
			}
			st.Active = oldSlot
			st.Op.RollbackMS = max(time.Since(began).Milliseconds(), 1)
			return nil
		})
	}
	if err != nil {
		if isCrash(err) {
			return Rehearsal{}, err
		}
		if ctx.Err() != nil {
			return Rehearsal{}, fmt.Errorf("rehearse %s at step %s: %w", app, st.Op.Step, ErrInterrupted)
		}
		log.Error("rollback rehearsal failed; traffic stays on the new slot", "step", st.Op.Step, "error", err)
		rec.Reason = fmt.Sprintf("rollback to %s (version %s) failed at %s: %v", oldSlot, old.Version, st.Op.Step, err)
		rec.RolledForward = true
		st.Op = nil
		if st.Active == oldSlot { // switched, then persisting failed
			if perr := m.point(ctx, rt, st.Traffic, newSlot, cur.Port); perr != nil {
				rec.RolledForward = false
				rec.Reason += fmt.Sprintf("; pointing traffic at %s again failed: %v", newSlot, perr)
			} else {
				st.Active = newSlot
			}
		}
		m.settleOld(ctx, rt, oldSlot)
		return rec, m.recordRehearsal(rt, rec)
	}
	rec.RollbackMS = st.Op.RollbackMS
	log.Info("rehearsal: old slot serves again; rolling forward", "rollback_ms", rec.RollbackMS)

	err = m.runStep(rt, StepRehearseForward, true, func() error {
		if err := m.startChecked(ctx, rt.name, newSlot, cur, ready); err != nil {
			return err
		}
		if err := m.point(ctx, rt, st.Traffic, newSlot, cur.Port); err != nil {
			return err
		}
		st.Active = newSlot
		rec.RolledForward = true
		rec.OK = time.Duration(rec.RollbackMS)*time.Millisecond <= maxRollback
		if !rec.OK {
			rec.Reason = fmt.Sprintf("rollback took %s, over max_rollback_time %s", time.Duration(rec.RollbackMS)*time.Millisecond, maxRollback)
		}
		rec.Time = m.cfg.Clock().UTC().Round(0) // wall clock only, as the state file keeps it
		st.Rehearsal = &rec
		m.settleOld(ctx, rt, oldSlot)
		return nil
	})
	switch {
	case err == nil:
		log.Warn("rollback rehearsed", "rollback_ms", rec.RollbackMS, "ok", rec.OK)
		return rec, nil
	case isCrash(err):
		return Rehearsal{}, err
	case ctx.Err() != nil:
		return Rehearsal{}, fmt.Errorf("rehearse %s at step %s: %w", app, StepRehearseForward, ErrInterrupted)
	}
	// The new slot does not serve again: the host stays on the old
	// version (a rollback that held). The leader fails the phase; its
	// revert finds traffic already on the old slot.
	log.Error("rehearsal could not roll forward; the old slot keeps serving", "error", err)
	st.Op = nil
	rec.OK, rec.RolledForward = false, false
	rec.Reason = fmt.Sprintf("rolled back in %s but could not roll forward to %s (version %s): %v; the old version serves",
		time.Duration(rec.RollbackMS)*time.Millisecond, newSlot, cur.Version, err)
	return rec, m.recordRehearsal(rt, rec)
}

// startChecked installs and starts a slot's unit (the old slot of a
// revert or a rehearsal), requires it running and, with ready, passing
// the health checks on its port.
func (m *Manager) startChecked(ctx context.Context, app string, slot Name, ss *SlotState, ready ReadyFunc) error {
	if _, err := m.cfg.Driver.Install(ctx, *ss.Unit); err != nil {
		return err
	}
	if err := m.cfg.Driver.Start(ctx, app, slot); err != nil {
		return err
	}
	us, err := m.cfg.Driver.Status(ctx, app, slot)
	if err != nil {
		return err
	}
	if !us.Running() {
		return fmt.Errorf("slot %s is %s/%s: %w", slot, us.ActiveState, us.SubState, ErrUnitFailed)
	}
	if ready != nil {
		if err := ready(ctx, ss.Port); err != nil {
			return fmt.Errorf("slot %s runs but does not pass its health checks: %w", slot, err)
		}
	}
	return nil
}

// settleOld puts the old slot back as the bake keeps it: stopped when
// keep_old is cold, running when hot (a failure is logged; reconcile
// stops it later).
func (m *Manager) settleOld(ctx context.Context, rt *appRT, oldSlot Name) {
	if rt.st.KeepOld != "cold" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := m.cfg.Driver.Stop(cctx, rt.name, oldSlot); err != nil {
		m.log.Error("rehearsal: stopping the cold old slot failed", "app", rt.name, "slot", oldSlot, "error", err)
	}
}

// recordRehearsal stamps and persists a rehearsal's result.
func (m *Manager) recordRehearsal(rt *appRT, rec Rehearsal) error {
	rec.Time = m.cfg.Clock().UTC().Round(0)
	rt.st.Rehearsal = &rec
	if err := m.save(rt); err != nil {
		return fmt.Errorf("rehearse %s: %w", rt.name, err)
	}
	return nil
}

// reconcileRehearsal finishes a rehearsal an agent restart interrupted:
// the host rolls forward (the new slot becomes active again; reconcile's
// later steps start it and point traffic) and the rehearsal is recorded as
// failed — its measurement died with the agent.
func (m *Manager) reconcileRehearsal(ctx context.Context, rt *appRT) error {
	st := rt.st
	op := st.Op
	m.log.Warn("reconcile: rollback rehearsal interrupted; rolling forward", "app", rt.name, "generation", op.Generation,
		"step", op.Step, "slot", op.From, "reason", "a rehearsal is never left half done")
	st.Active = op.From
	var errs []error
	if st.KeepOld == "cold" {
		if err := m.cfg.Driver.Stop(ctx, rt.name, op.To); err != nil {
			errs = append(errs, fmt.Errorf("stop old slot %s: %w", op.To, err))
		}
	}
	rec := Rehearsal{Generation: op.Generation, RollbackMS: op.RollbackMS, RolledForward: true,
		Reason: fmt.Sprintf("agent restarted during the rehearsal (step %s); rolled forward", op.Step)}
	if o, n := st.Slots[op.To], st.Slots[op.From]; o != nil && n != nil {
		rec.OldVersion, rec.NewVersion = o.Version, n.Version
	}
	st.Op = nil
	if err := m.recordRehearsal(rt, rec); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
