package slot

import (
	"context"
	"fmt"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Weighted traffic steps (traffic.steps). The swap's switch step sends
// the first step's share of new traffic to the new slot and keeps the old
// one hot for the rest (Split in the state); the agent then moves the
// weight up step by step with SetWeight, judging each step on the proxy's
// per-slot counts, and a failed step is an ordinary revert: switch_back
// points everything at the old slot at once.

// firstSplit is the split the switch step applies: nil when the release
// has no steps, its first step is 100, or there is no old slot to keep
// the rest (a first deploy).
func firstSplit(spec *rollwavev1.ReleaseSpec, st *State, from Name) *Split {
	steps := spec.GetTraffic().GetSteps()
	if len(steps) == 0 || steps[0] >= 100 || steps[0] < 1 || from == "" || st.Slots[from] == nil {
		return nil
	}
	return &Split{Weight: int(steps[0]), Sticky: spec.GetTraffic().GetSticky()}
}

// weight is the Active slot's share of new traffic: 100 unless a
// weighted step runs.
func (s *State) weight() int {
	if s.Split != nil {
		return s.Split.Weight
	}
	return 100
}

// Weight is the active slot's share of new traffic, 100 unless a weighted
// step runs (see State.Split).
func (s State) Weight() int { return s.weight() }

// repoint points the switch where the state says: at Active, split with
// From when a weighted step runs. Used at start-up.
func (m *Manager) repoint(ctx context.Context, rt *appRT) error {
	st := rt.st
	act := st.Active
	if st.Split == nil || st.From == "" || st.Slots[st.From] == nil {
		st.Split = nil
		return m.point(ctx, rt, st.Traffic, act, m.slotPort(st, act))
	}
	w := &Weighting{Old: st.From, OldPort: m.slotPort(st, st.From), Weight: st.Split.Weight, Sticky: st.Split.Sticky}
	return m.pointSplit(ctx, rt, st.Traffic, act, m.slotPort(st, act), w)
}

// SetWeight moves generation gen's weighted step: the new (active) slot
// gets weight percent of new traffic (1-100; 100 ends the steps and sends
// everything to it). Sending traffic back (weight 0) is a revert, not a
// step: use Revert. The state is persisted before SetWeight returns.
func (m *Manager) SetWeight(ctx context.Context, app string, gen uint64, weight int) error {
	if weight < 1 || weight > 100 {
		return fmt.Errorf("set weight %s: weight %d: want 1-100 (0 is a revert)", app, weight)
	}
	rt, err := m.lock(app)
	if err != nil {
		return fmt.Errorf("set weight: %w", err)
	}
	defer rt.mu.Unlock()
	st := rt.st
	if err := checkGen(app, st, gen); err != nil {
		return fmt.Errorf("set weight: %w", err)
	}
	switch {
	case st.Op != nil:
		return fmt.Errorf("set weight %s generation %d: %w", app, gen, ErrBusy)
	case !live(st.PhaseState()):
		return fmt.Errorf("set weight %s generation %d: %w: %s", app, gen, ErrWrongState, st.Phase)
	case st.Split == nil:
		if weight == 100 {
			return nil // already all on the new slot
		}
		return fmt.Errorf("set weight %s generation %d: %w: no weighted step runs", app, gen, ErrWrongState)
	case st.Split.Weight == weight:
		return nil
	}
	port := m.slotPort(st, st.Active)
	if weight == 100 {
		if err := m.point(ctx, rt, st.Traffic, st.Active, port); err != nil {
			return fmt.Errorf("set weight %s: %w", app, err)
		}
	} else {
		w := &Weighting{Old: st.From, OldPort: m.slotPort(st, st.From), Weight: weight, Sticky: st.Split.Sticky}
		if err := m.pointSplit(ctx, rt, st.Traffic, st.Active, port, w); err != nil {
			return fmt.Errorf("set weight %s: %w", app, err)
		}
		st.Split = &Split{Weight: weight, Sticky: st.Split.Sticky}
	}
	m.log.Info("traffic weight moved", "app", app, "generation", gen, "slot", st.Active, "weight", weight, "old_slot", st.From)
	if err := m.save(rt); err != nil {
		return fmt.Errorf("set weight %s: %w", app, err)
	}
	return nil
}

// live: the generation's new slot serves and has not been reverted or
// finalized.
func live(s rollwavev1.AssignmentState) bool {
	switch s {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
		return true
	}
	return false
}

// DrainStepStats returns what the app's proxy measured per slot since the
// last call, for the weighted-step gate (independent of
// DrainRequestStats); ok is false when the switch measures nothing.
func (m *Manager) DrainStepStats(app string) (protocol string, stats map[Name]*health.RequestStats, ok bool) {
	mt, ok := m.meterOf(app)
	if !ok {
		return "", nil, false
	}
	sm, ok := mt.(StepMeter)
	if !ok {
		return "", nil, false
	}
	if p, ok := mt.(interface{ Protocol() string }); ok {
		protocol = p.Protocol()
	}
	return protocol, sm.DrainStepStats(), true
}
