package coordinator

import (
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// releaseTraffic is where each host of a release sends its app's
// traffic, from the slot facts its agent last reported (stored with the
// host): for every assignment whose new version is the host's active
// slot, the new version's share of new connections or requests — 0 in a
// dark phase, the step's weight during weighted steps, 100 otherwise.
// Hosts not switched to the release's version (pending, staging,
// reverted, or since moved on) are left out.
func releaseTraffic(st *raftfsm.State, app string, as []*rollwavev1.Assignment) []*rollwavev1.HostTraffic {
	return hostTraffic(st.Host, app, as)
}

// hostTraffic is releaseTraffic over hostOf (nil for an unknown host).
func hostTraffic(hostOf func(id string) *rollwavev1.Host, app string, as []*rollwavev1.Assignment) []*rollwavev1.HostTraffic {
	var out []*rollwavev1.HostTraffic
	for _, a := range as {
		switch a.GetState() {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED:
		default:
			continue
		}
		h := hostOf(a.GetHost())
		if h == nil {
			continue
		}
		for _, f := range h.GetApps() {
			if f.GetApp() != app || activeVersion(f) != a.GetVersion() {
				continue
			}
			t := &rollwavev1.HostTraffic{Host: a.GetHost(), Phase: a.GetPhase(), NewWeight: 100, Dark: f.GetDark(), Shadow: f.GetShadow()}
			switch {
			case f.GetDark():
				t.NewWeight = 0
			case f.GetTrafficWeight() > 0:
				t.NewWeight = f.GetTrafficWeight()
			}
			out = append(out, t)
		}
	}
	return out
}

// activeVersion is the version in the slot traffic goes to.
func activeVersion(f *rollwavev1.SlotFacts) string {
	switch f.GetActive() {
	case rollwavev1.Slot_SLOT_BLUE:
		return f.GetBlueVersion()
	case rollwavev1.Slot_SLOT_GREEN:
		return f.GetGreenVersion()
	}
	return ""
}
