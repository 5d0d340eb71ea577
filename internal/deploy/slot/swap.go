package slot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Swap steps, in order. Each is persisted when it starts and when it is
// done, with crash points "swap/<step>/begin" and "swap/<step>/done".
const (
	StepStage   = "stage"    // render the unit, stop the idle slot, fetch+verify+unpack the artifact
	StepInstall = "install"  // install the idle slot's unit
	StepStart   = "start"    // start it (driver waits for active + settle)
	StepReady   = "ready"    // the readiness check under healthy_deadline
	StepSwitch  = "switch"   // point traffic at the new slot → SWITCHED
	StepKeepOld = "keep_old" // hot: old keeps running; cold: drain hook, old stopped → BAKING
)

// With lifecycle hooks, StepPreSwitch runs between ready and switch and
// StepPostSwitch between switch and keep_old (hooks.go).

// ReadyFunc checks that a freshly started slot serves (the agent passes
// its health checks). It must return within ctx's deadline.
type ReadyFunc func(ctx context.Context, port int) error

// Swap deploys assignment a (with its release spec) into the app's idle
// slot and moves traffic to it: stage, install, start, ready, switch, then
// bake with the old slot kept per slots.keep_old. Progress goes to
// OnProgress: STAGING, then SWITCHED and BAKING, or FAILED with the reason.
//
// Any failure before the switch stops the new slot and leaves traffic and
// the old slot untouched: the serving slot keeps serving. Swap is
// idempotent by generation: a generation already accepted is not redone
// (its last result is reported again) and an older one is refused with
// ErrStaleGeneration.
func (m *Manager) Swap(ctx context.Context, a *rollwavev1.Assignment, spec *rollwavev1.ReleaseSpec, ready ReadyFunc) error {
	if a == nil || spec == nil {
		return fmt.Errorf("swap: assignment and spec are required")
	}
	rt, err := m.lock(a.GetApp())
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	gen := a.GetGeneration()
	log := m.log.With("app", rt.name, "generation", gen)
	switch {
	case gen == 0:
		return fmt.Errorf("swap %s: generation 0 is not valid", rt.name)
	case gen < st.Generation:
		return fmt.Errorf("swap %s: %w: generation %d, host is at %d", rt.name, ErrStaleGeneration, gen, st.Generation)
	case gen == st.Generation && st.Resume != "" && st.Op == nil:
		log.Info("redoing a swap interrupted by an agent restart", "interrupted_at", st.Resume)
	case gen == st.Generation:
		r, _ := st.LastResult()
		log.Info("generation already applied; not redoing it", "state", r.State)
		m.report(rt.name, gen, r.AssignmentState(), r.Reason)
		return nil
	case st.Op != nil:
		return fmt.Errorf("swap %s generation %d: %w (%s of generation %d at step %s)", rt.name, gen, ErrBusy, st.Op.Kind, st.Op.Generation, st.Op.Step)
	}

	from := st.Active
	to := slotFromProto(a.GetTargetSlot())
	if to == "" {
		to = Blue
		if from != "" {
			to = from.Other()
		}
	}
	version := a.GetVersion()
	if version == "" {
		version = spec.GetVersion()
	}
	keepOld := spec.GetSlots().GetKeepOld()
	if keepOld == "" {
		keepOld = "hot"
	}
	traffic := &TrafficState{Mode: spec.GetTraffic().GetMode(), Listen: spec.GetTraffic().GetListen(),
		Command: append([]string(nil), spec.GetTraffic().GetCommand()...), Protocol: spec.GetTraffic().GetProtocol()}
	port := portOf(spec, to)

	// The generation is accepted from here on: it is recorded, and every
	// outcome (even a bad spec) is reported against it.
	now := m.cfg.Clock()
	st.Generation, st.From, st.To, st.Verified, st.Resume = gen, from, to, false, ""
	st.Release, st.Hooks = spec.GetName(), hooksOf(spec)
	st.setResult(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, "", now)
	if err := checkSwap(spec, from, to, keepOld); err != nil {
		return m.failSwap(ctx, rt, "validate", err, false)
	}
	st.KeepOld = keepOld
	st.Op = &Operation{Kind: OpSwap, Generation: gen, From: from, To: to, StartedAt: now}
	// The idle slot's files are about to be replaced: forget its old unit.
	delete(st.Slots, to)
	log.Info("swap starting", "from", from, "slot", to, "version", version, "port", port, "keep_old", keepOld)
	m.report(rt.name, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, "")

	dir := m.slotDir(rt.name, to)
	var unit Unit
	steps := []struct {
		name string
		fn   func() error
	}{
		{StepStage, func() error {
			var err error
			if unit, err = RenderUnit(spec, rt.name, to, version, dir, port); err != nil {
				return err
			}
			// The idle slot may still run: the hot old slot of a swap that
			// was never finalized. It serves nothing; stop it before its
			// files go.
			if err := m.cfg.Driver.Stop(ctx, rt.name, to); err != nil {
				return fmt.Errorf("stop idle slot: %w", err)
			}
			art := spec.GetArtifact()
			return StageWith(ctx, art.GetUrl(), art.GetSha256(), dir, StageOptions{Allow: m.cfg.CheckArtifactURL, Limits: m.cfg.Limits})
		}},
		{StepInstall, func() error {
			if _, err := m.cfg.Driver.Install(ctx, unit); err != nil {
				return err
			}
			st.Slots[to] = &SlotState{Version: version, Generation: gen, Port: port, UnitHash: unitHash(unit), Unit: &unit}
			return nil
		}},
		{StepStart, func() error { return m.cfg.Driver.Start(ctx, rt.name, to) }},
		{StepReady, func() error { return m.checkReady(ctx, rt.name, to, port, spec, ready) }},
	}
	if st.hasHook(StepPreSwitch) {
		steps = append(steps, struct {
			name string
			fn   func() error
		}{StepPreSwitch, func() error { return m.runHook(ctx, rt, StepPreSwitch) }})
	}
	for _, s := range steps {
		if err := m.runStep(rt, s.name, false, s.fn); err != nil {
			return m.failSwap(ctx, rt, s.name, err, false)
		}
	}

	split := firstSplit(spec, st, from)
	err = m.runStep(rt, StepSwitch, false, func() error {
		if split == nil {
			if err := m.point(ctx, rt, traffic, to, port); err != nil {
				return err
			}
		} else {
			if err := m.pointSplit(ctx, rt, traffic, to, port, m.weighting(st, split)); err != nil {
				return err
			}
			st.Split = split
		}
		st.Active = to
		st.setResult(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, "", m.cfg.Clock())
		return nil
	})
	if err != nil {
		return m.failSwap(ctx, rt, StepSwitch, err, true)
	}
	if split != nil && split.Dark {
		log.Info("dark phase: new slot started, every user request stays on the old slot", "from", from, "slot", to, "shadow", split.Shadow != nil)
	} else {
		log.Info("traffic switched", "from", from, "slot", to, "weight", st.weight())
	}
	m.reportMoved(rt.name, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, "", SwitchEvidence(st, from, to))

	if _, err := m.runHookStep(ctx, rt, StepPostSwitch); err != nil {
		return m.failPostSwitch(ctx, rt, err, ready)
	}

	var bakeNote string
	err = m.runStep(rt, StepKeepOld, true, func() error {
		if from != "" && keepOld == "cold" {
			// Traffic left the old slot; let it finish before it stops.
			if err := m.runDrain(ctx, rt, OpSwap); err != nil {
				if ctx.Err() != nil {
					return err
				}
				bakeNote = noteHookFailure(bakeNote, err) + "; old slot stopped anyway"
			}
			if err := m.cfg.Driver.Stop(ctx, rt.name, from); err != nil {
				// The new slot serves; a lingering old process is not a
				// reason to fail the swap. Say so in the report.
				bakeNote = noteHookFailure(bakeNote, fmt.Errorf("old slot %s not stopped: %w", from, err))
				log.Warn("keep_old=cold: stopping old slot failed", "slot", from, "error", err)
			}
		}
		st.setResult(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, bakeNote, m.cfg.Clock())
		return nil
	})
	if isCrash(err) {
		return err
	}
	if err != nil && ctx.Err() != nil {
		// Stopped in the drain hook: Reconcile finishes keep_old.
		return fmt.Errorf("swap %s generation %d at step %s: %w", rt.name, gen, StepKeepOld, ErrInterrupted)
	}
	if err != nil {
		// Only persisting can fail here; traffic is on the new slot.
		return fmt.Errorf("swap %s generation %d: %w", rt.name, gen, err)
	}
	log.Info("baking", "slot", to, "old_slot", from, "keep_old", keepOld)
	m.report(rt.name, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, bakeNote)
	return nil
}

// checkReady runs the readiness check under health.healthy_deadline and
// then requires the unit to be still running.
func (m *Manager) checkReady(ctx context.Context, app string, slot Name, port int, spec *rollwavev1.ReleaseSpec, ready ReadyFunc) error {
	deadline := DefaultHealthyDeadline
	if ms := spec.GetHealth().GetHealthyDeadlineMs(); ms > 0 {
		deadline = sattime.Millis(ms)
	}
	if ready != nil {
		rctx, cancel := context.WithTimeout(ctx, deadline)
		err := ready(rctx, port)
		cancel()
		if err != nil {
			return fmt.Errorf("not ready within %s: %w", deadline, err)
		}
	}
	us, err := m.cfg.Driver.Status(ctx, app, slot)
	if err != nil {
		return err
	}
	if !us.Running() {
		return fmt.Errorf("unit %s is %s/%s after the readiness check: %w", UnitName(app, slot), us.ActiveState, us.SubState, ErrUnitFailed)
	}
	return nil
}

// failSwap ends a swap that failed before (or at) the switch: the new slot
// is stopped, traffic goes back to (stays on) the old slot, and FAILED is
// recorded and reported. A crash-point error returns untouched: a dead
// agent cleans nothing up.
func (m *Manager) failSwap(ctx context.Context, rt *appRT, step string, cause error, atSwitch bool) error {
	if isCrash(cause) {
		return cause
	}
	st := rt.st
	gen := st.Generation
	if ctx.Err() != nil && st.Op != nil {
		// The agent is stopping: that is not the swap failing. Leave the
		// operation recorded, as a crash would; Reconcile at the next
		// start puts the old slot back and the swap is redone.
		m.log.Warn("swap interrupted by shutdown; it resumes when the agent starts again",
			"app", rt.name, "generation", gen, "step", step, "cause", cause)
		return fmt.Errorf("swap %s generation %d at step %s: %w", rt.name, gen, step, ErrInterrupted)
	}
	reason := fmt.Sprintf("%s: %v", step, cause)
	if herr := (*HookError)(nil); errors.As(cause, &herr) {
		reason = cause.Error() // "pre_switch hook failed: …" names the step
	}
	log := m.log.With("app", rt.name, "generation", gen, "step", step)
	log.Error("swap failed; the serving slot keeps serving", "error", cause, "slot", st.To, "serving", st.From)

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	st.Split = nil
	if st.Op != nil { // the new slot may have been started
		if atSwitch && st.From != "" && rt.sw != nil {
			// A failed hook may have half-switched an external balancer.
			if err := rt.sw.Point(cctx, st.From, m.slotPort(st, st.From)); err != nil {
				log.Error("pointing traffic back at the old slot failed", "slot", st.From, "error", err)
			}
		}
		if err := m.cfg.Driver.Stop(cctx, rt.name, st.To); err != nil {
			log.Error("stopping the new slot failed", "slot", st.To, "error", err)
		}
	}
	st.Op = nil
	if err := m.setResult(rt, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, reason); err != nil {
		log.Error("persisting the failure failed", "error", err)
	}
	return fmt.Errorf("swap %s generation %d failed: %s: %w", rt.name, gen, step, cause)
}

func portOf(spec *rollwavev1.ReleaseSpec, slot Name) int {
	if slot == Green {
		return int(spec.GetSlots().GetGreenPort())
	}
	return int(spec.GetSlots().GetBluePort())
}

// checkSwap validates what the swap needs from the spec.
func checkSwap(spec *rollwavev1.ReleaseSpec, from, to Name, keepOld string) error {
	bp, gp := spec.GetSlots().GetBluePort(), spec.GetSlots().GetGreenPort()
	switch {
	case to == from:
		return fmt.Errorf("target slot %s is the active slot; refusing to replace the serving slot", to)
	case bp <= 0 || bp > 65535 || gp <= 0 || gp > 65535:
		return fmt.Errorf("slots.blue_port %d / slots.green_port %d: want 1-65535", bp, gp)
	case bp == gp:
		return fmt.Errorf("slots.blue_port and slots.green_port are both %d", bp)
	case keepOld != "hot" && keepOld != "cold":
		return fmt.Errorf("slots.keep_old %q: want hot or cold", keepOld)
	case spec.GetArtifact().GetUrl() == "" || spec.GetArtifact().GetSha256() == "":
		return fmt.Errorf("artifact.url and artifact.sha256 are required")
	}
	switch m := spec.GetTraffic().GetMode(); m {
	case "", "none", "exec", "proxy":
	default:
		return fmt.Errorf("traffic.mode %q: want proxy, exec or none", m)
	}
	return nil
}

// RenderUnit renders a release's unit template for one slot. Placeholders
// {{slot_dir}} {{port}} {{slot}} {{version}} {{app}} expand in exec_start,
// exec_start_pre, environment values and working_directory; an unknown one
// is an error. The environment also gets ROLLWAVE_APP, ROLLWAVE_SLOT,
// ROLLWAVE_PORT, ROLLWAVE_VERSION and ROLLWAVE_SLOT_DIR unless the spec
// sets them. An empty restart policy means "on-failure".
func RenderUnit(spec *rollwavev1.ReleaseSpec, app string, slot Name, version, dir string, port int) (Unit, error) {
	us := spec.GetUnit()
	v := Vars{App: app, Slot: slot, Version: version, SlotDir: dir, Port: port}
	u := Unit{App: app, Slot: slot, Version: version, Dir: dir, Port: port, User: us.GetUser(), Restart: us.GetRestart(),
		Hardening: slices.Clone(us.GetHardening())}
	var err error
	if u.ExecStart, err = RenderCommand(us.GetExecStart(), v); err != nil {
		return Unit{}, fmt.Errorf("unit.exec_start: %w", err)
	}
	for i, pre := range us.GetExecStartPre() {
		argv, err := RenderCommand(pre, v)
		if err != nil {
			return Unit{}, fmt.Errorf("unit.exec_start_pre[%d]: %w", i, err)
		}
		u.ExecStartPre = append(u.ExecStartPre, argv)
	}
	if u.WorkingDirectory, err = Render(us.GetWorkingDirectory(), v); err != nil {
		return Unit{}, fmt.Errorf("unit.working_directory: %w", err)
	}
	if u.WorkingDirectory != "" && !filepath.IsAbs(u.WorkingDirectory) {
		return Unit{}, fmt.Errorf("unit.working_directory %q: must be absolute", u.WorkingDirectory)
	}
	u.Environment = map[string]string{
		"ROLLWAVE_APP": app, "ROLLWAVE_SLOT": string(slot), "ROLLWAVE_PORT": strconv.Itoa(port),
		"ROLLWAVE_VERSION": version, "ROLLWAVE_SLOT_DIR": dir,
	}
	for k, val := range us.GetEnvironment() {
		if u.Environment[k], err = Render(val, v); err != nil {
			return Unit{}, fmt.Errorf("unit.environment[%s]: %w", k, err)
		}
	}
	switch u.Restart {
	case "":
		u.Restart = "on-failure"
	case "always", "on-failure", "no":
	default:
		return Unit{}, fmt.Errorf("unit.restart %q: want always, on-failure or no", u.Restart)
	}
	return u, nil
}
