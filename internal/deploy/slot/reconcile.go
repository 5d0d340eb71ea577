package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Reconcile brings every app on this host to the state its state file
// describes, serving exactly one slot. Run it when the agent starts (it is
// level-triggered and idempotent, so running it again later is harmless).
// The rules, in order:
//
//  1. Units recorded in the state file are installed again (the process
//     driver forgets them with the agent; systemd reloads only if changed).
//  2. An interrupted swap whose switch had not completed is rolled back:
//     the new slot is stopped, the old slot stays active, and the
//     generation stays STAGING with State.Resume set, so Swap of the same
//     generation redoes it (a restart is not a failure of the swap). One whose switch completed keeps the new slot (it is
//     baking; the coordinator decides): keep_old is applied and BAKING
//     recorded.
//     An interrupted post_switch hook (no verdict) is a failed smoke
//     test: the host reverts (on the app's first deploy, with nothing to
//     go back to, the new slot is kept as after the switch).
//  3. An interrupted revert is completed.
//  4. The active slot is started if it is down, and traffic is pointed at
//     it.
//  5. The inactive slot is stopped, unless it is the old slot kept hot
//     during a bake (a hot old slot that is down stays down; Revert starts
//     it when needed).
//
// Every action is logged with its reason. Errors are collected per app;
// one app's trouble does not stop the others.
func (m *Manager) Reconcile(ctx context.Context) error {
	var errs []error
	for _, app := range m.Apps() {
		if err := m.reconcileApp(ctx, app); err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", app, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) reconcileApp(ctx context.Context, app string) error {
	rt, err := m.lock(app)
	if err != nil {
		return err
	}
	defer rt.mu.Unlock()
	st := rt.st
	log := m.log.With("app", app, "generation", st.Generation)
	var errs []error

	// 0. Leftovers of a stage the agent died in (see Stage).
	for _, pat := range []string{".download-*", ".stage-*"} {
		leftovers, _ := filepath.Glob(filepath.Join(m.cfg.DataDir, "apps", app, pat))
		for _, l := range leftovers {
			log.Info("reconcile: removing leftover", "path", l, "reason", "temporary file of an interrupted stage")
			if err := os.RemoveAll(l); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// 1. Units from the state file.
	for _, n := range []Name{Blue, Green} {
		ss := st.Slots[n]
		if ss == nil || ss.Unit == nil {
			continue
		}
		changed, err := m.cfg.Driver.Install(ctx, *ss.Unit)
		if err != nil {
			errs = append(errs, fmt.Errorf("install %s: %w", n, err))
			continue
		}
		if changed {
			log.Info("reconcile: installed unit", "slot", n, "version", ss.Version, "reason", "unit recorded in the state file was not installed (or differed)")
		}
	}

	// 2./3. An interrupted operation.
	if op := st.Op; op != nil {
		log := log.With("step", op.Step, "step_done", op.StepDone)
		switch op.Kind {
		case OpSwap:
			if op.Step == StepPostSwitch && !op.StepDone && op.From != "" {
				// The smoke test's verdict died with the agent: traffic
				// is on a version that never passed it. Revert.
				log.Warn("reconcile: swap interrupted in its post_switch hook; reverting", "slot", op.From,
					"reason", "the hook's verdict is unknown")
				st.Active = op.To
				if err := m.beginRevert(rt, "agent restarted during the post_switch hook; its verdict is unknown, so the host reverts", false); err != nil {
					errs = append(errs, err)
				} else if err := m.runRevert(ctx, rt, nil); err != nil {
					errs = append(errs, err)
				}
			} else if op.Step == StepKeepOld || op.Step == StepPostSwitch || (op.Step == StepSwitch && op.StepDone) {
				log.Warn("reconcile: swap interrupted after the switch; keeping the new slot", "slot", op.To,
					"reason", "traffic had moved; the bake goes on and the coordinator decides")
				st.Active = op.To
				if op.From != "" && st.KeepOld == "cold" {
					if err := m.cfg.Driver.Stop(ctx, app, op.From); err != nil {
						errs = append(errs, fmt.Errorf("stop old slot %s: %w", op.From, err))
					}
				}
				st.Op = nil
				if err := m.setResult(rt, op.Generation, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
					"agent restarted during the swap; new slot kept"); err != nil {
					errs = append(errs, err)
				}
			} else {
				log.Warn("reconcile: swap interrupted before the switch; rolling back", "slot", op.To, "serving", op.From,
					"reason", "traffic had not moved; the old slot stays active")
				if err := m.cfg.Driver.Stop(ctx, app, op.To); err != nil {
					errs = append(errs, fmt.Errorf("stop new slot %s: %w", op.To, err))
				}
				st.Active = op.From
				st.Op = nil
				// A restart is not a failure of the swap: the generation
				// stays STAGING and is redone (Swap of the same generation).
				st.Resume = op.Step
				if err := m.setResult(rt, op.Generation, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING,
					fmt.Sprintf("agent restarted during step %s; old slot kept, the swap is redone", op.Step)); err != nil {
					errs = append(errs, err)
				}
			}
		case OpRevert:
			log.Warn("reconcile: completing an interrupted revert", "slot", op.To, "reason", "a revert is never left half done")
			if err := m.runRevert(ctx, rt, nil); err != nil {
				errs = append(errs, err)
			}
		case OpRehearse:
			if err := m.reconcileRehearsal(ctx, rt); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// 4. The active slot runs and gets the traffic.
	if st.Active == "" {
		for _, n := range []Name{Blue, Green} {
			if err := m.stopIfRunning(ctx, app, n, "no slot is active for this app yet"); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	act := st.Active
	us, err := m.cfg.Driver.Status(ctx, app, act)
	if err != nil {
		errs = append(errs, err)
	} else if !us.Running() && us.ActiveState != "activating" {
		log.Warn("reconcile: starting the active slot", "slot", act, "unit_state", us.ActiveState+"/"+us.SubState,
			"reason", "the state file says it serves but it is down")
		if err := m.cfg.Driver.Start(ctx, app, act); err != nil {
			errs = append(errs, fmt.Errorf("start active slot %s: %w", act, err))
		}
	}
	if cur, ok := rt.currentSwitch(); !ok || cur != act || st.Split != nil {
		log.Info("reconcile: pointing traffic", "slot", act, "was", cur, "weight", st.weight(), "reason", "switch must match the state file")
		if err := m.repoint(ctx, rt); err != nil {
			errs = append(errs, fmt.Errorf("point traffic at %s: %w", act, err))
		}
	}

	// 5. The inactive slot.
	idle := act.Other()
	hotBake := st.KeepOld == "hot" && idle == st.From && st.To == act
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
	default:
		hotBake = false
	}
	if !hotBake {
		if err := m.stopIfRunning(ctx, app, idle, "inactive slot outside a hot bake"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.save(rt); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (rt *appRT) currentSwitch() (Name, bool) {
	if rt.sw == nil {
		return "", false
	}
	return rt.sw.Current()
}

func (m *Manager) stopIfRunning(ctx context.Context, app string, slot Name, reason string) error {
	us, err := m.cfg.Driver.Status(ctx, app, slot)
	if err != nil {
		return err
	}
	if !us.Running() && us.ActiveState != "activating" {
		return nil
	}
	m.log.Warn("reconcile: stopping slot", "app", app, "slot", slot, "reason", reason)
	if err := m.cfg.Driver.Stop(ctx, app, slot); err != nil {
		return fmt.Errorf("stop %s: %w", slot, err)
	}
	return nil
}
