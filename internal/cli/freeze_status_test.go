package cli

import (
	"bytes"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// release status says why the current phase waits (the freeze window
// from its latest phase.held event) and shows a freeze override; a phase
// that started after the hold is no longer reported held.
func TestReleaseStatusShowsFreezeHold(t *testing.T) {
	const why = `freeze window "frz-1" (cron "0 18 * * FRI" for 62h0m0s in Europe/Berlin) until 2026-11-30T08:00:00+01:00 (2026-11-30T07:00:00Z): weekend`
	r := &rollwavev1.Release{Id: "api-2", Spec: &rollwavev1.ReleaseSpec{App: "api", Version: "2"}, State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		CurrentPhase: 1, Phases: []*rollwavev1.Phase{{Index: 0, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED}, {Index: 1, State: rollwavev1.PhaseState_PHASE_STATE_PENDING}},
		FreezeOverride: &rollwavev1.FreezeOverride{Actor: "root", Reason: "hotfix", TimeUnixNano: nanos(testNow)}}
	events := []*rollwavev1.Event{
		{Kind: "phase.held", Phase: 0, Evidence: map[string]string{"reason": "global freeze: old"}},
		{Kind: "phase.started", Phase: 0},
		{Kind: "phase.held", Phase: 1, Evidence: map[string]string{"reason": why}},
	}
	var b bytes.Buffer
	if err := renderStatus(&b, testNow, r, nil, events, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Phase 1 held: " + why, "Freeze override  by root at 2026-11-29T12:00:00Z: hotfix"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	r.Phases[1].State = rollwavev1.PhaseState_PHASE_STATE_DEPLOYING
	b.Reset()
	if err := renderStatus(&b, testNow, r, nil, append(events, &rollwavev1.Event{Kind: "phase.started", Phase: 1}), nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "held:") {
		t.Errorf("a started phase is reported held:\n%s", b.String())
	}
}
