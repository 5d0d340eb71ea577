package slot

import (
	"context"
	"fmt"
	"net/http"
	"slices"

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
// the rest (a first deploy). With phases.dark it is the dark phase:
// weight 0, every user request on the old slot, optionally mirrored.
func firstSplit(spec *rollwavev1.ReleaseSpec, st *State, from Name) *Split {
	if from == "" || st.Slots[from] == nil {
		return nil
	}
	sticky := spec.GetTraffic().GetSticky()
	if ph := spec.GetPhases(); ph.GetDarkMs() > 0 {
		sp := &Split{Weight: 0, Sticky: sticky, Dark: true}
		if ph.GetShadow() && spec.GetTraffic().GetMode() == "proxy" {
			sp.Shadow = &Shadow{Sample: ph.GetShadowSample(), Methods: slices.Clone(ph.GetShadowMethods())}
			if sp.Shadow.Sample <= 0 || sp.Shadow.Sample > 1 {
				sp.Shadow.Sample = DefaultShadowSample
			}
			if len(sp.Shadow.Methods) == 0 {
				sp.Shadow.Methods = []string{http.MethodGet, http.MethodHead}
			}
		}
		return sp
	}
	steps := spec.GetTraffic().GetSteps()
	if len(steps) == 0 || steps[0] >= 100 || steps[0] < 1 {
		return nil
	}
	return &Split{Weight: int(steps[0]), Sticky: sticky}
}

// DefaultShadowSample is the share mirrored when an order carries shadow
// but no sample (spec.DefaultShadowSample).
const DefaultShadowSample = 0.1

// weighting is how the switch applies split s between Active and From.
func (m *Manager) weighting(st *State, s *Split) *Weighting {
	return &Weighting{Old: st.From, OldPort: m.slotPort(st, st.From), Weight: s.Weight, Sticky: s.Sticky, Shadow: s.Shadow}
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
	return m.pointSplit(ctx, rt, st.Traffic, act, m.slotPort(st, act), m.weighting(st, st.Split))
}

// SetWeight moves generation gen's weighted step: the new (active) slot
// gets weight percent of new traffic (1-100; 100 ends the steps and sends
// everything to it). From a dark phase (weight 0) it ends the dark phase.
// Sending traffic back (weight 0) is a revert, not a step: use Revert.
// The state is persisted before SetWeight returns.
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
		next := &Split{Weight: weight, Sticky: st.Split.Sticky}
		if err := m.pointSplit(ctx, rt, st.Traffic, st.Active, port, m.weighting(st, next)); err != nil {
			return fmt.Errorf("set weight %s: %w", app, err)
		}
		st.Split = next
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

// DrainShadowStats returns what the app's proxy compared (old slot's
// answers vs the new slot's to the same mirrored requests) since the last
// call; false when no mirror runs.
func (m *Manager) DrainShadowStats(app string) (ShadowStats, bool) {
	mt, ok := m.meterOf(app)
	if !ok {
		return ShadowStats{}, false
	}
	sm, ok := mt.(ShadowMeter)
	if !ok {
		return ShadowStats{}, false
	}
	return sm.DrainShadowStats()
}
