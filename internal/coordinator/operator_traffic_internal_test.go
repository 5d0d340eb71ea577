package coordinator

import (
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// A release's traffic per host comes from the hosts' slot facts, for the
// hosts whose active slot holds the release's version: dark is 0 %, a
// weighted step its weight, otherwise 100 %. Hosts not switched, reverted
// or since moved to another version are left out.
func TestHostTrafficFromSlotFacts(t *testing.T) {
	facts := func(active rollwavev1.Slot, blue, green string, weight int32, dark, shadow bool) *rollwavev1.Host {
		return &rollwavev1.Host{Apps: []*rollwavev1.SlotFacts{
			{App: "other", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "2"},
			{App: "api", Active: active, BlueVersion: blue, GreenVersion: green, TrafficWeight: weight, Dark: dark, Shadow: shadow},
		}}
	}
	hosts := map[string]*rollwavev1.Host{
		"dark":     facts(rollwavev1.Slot_SLOT_GREEN, "1", "2", 0, true, true),
		"step":     facts(rollwavev1.Slot_SLOT_BLUE, "2", "1", 25, false, false),
		"full":     facts(rollwavev1.Slot_SLOT_GREEN, "1", "2", 0, false, false),
		"reverted": facts(rollwavev1.Slot_SLOT_BLUE, "1", "2", 0, false, false),
		"moved-on": facts(rollwavev1.Slot_SLOT_BLUE, "3", "2", 0, false, false),
		"staging":  facts(rollwavev1.Slot_SLOT_BLUE, "1", "", 0, false, false),
	}
	as := []*rollwavev1.Assignment{
		{Host: "dark", Phase: 1, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED},
		{Host: "step", Phase: 1, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING},
		{Host: "full", Phase: 0, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY},
		{Host: "reverted", Phase: 0, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED},
		{Host: "moved-on", Phase: 0, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED},
		{Host: "staging", Phase: 2, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING},
		{Host: "gone", Phase: 2, Version: "2", State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING},
	}
	got := hostTraffic(func(id string) *rollwavev1.Host { return hosts[id] }, "api", as)
	want := []*rollwavev1.HostTraffic{
		{Host: "dark", Phase: 1, NewWeight: 0, Dark: true, Shadow: true},
		{Host: "step", Phase: 1, NewWeight: 25},
		{Host: "full", Phase: 0, NewWeight: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.GetHost() != w.GetHost() || g.GetPhase() != w.GetPhase() || g.GetNewWeight() != w.GetNewWeight() || g.GetDark() != w.GetDark() || g.GetShadow() != w.GetShadow() {
			t.Errorf("host %d: got %v, want %v", i, g, w)
		}
	}
}
