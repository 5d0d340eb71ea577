// Package drift finds the hosts that are not on their app's desired
// version, and builds the release that converges them.
//
// The desired release of an app is its last succeeded release; its spec's
// target (cells, exclude, labels) says which hosts should run its version.
// A targeted host whose active slot runs another version, and that no
// live assignment is moving, is drifted: it joined later, was down when
// the release was planned, failed within the failure budget, or reverted
// on its own because it was cut off. A convergence release is a new
// release with the desired release's spec, targeting only drifted hosts,
// one host per phase, so that the orchestrator's orders, gates, rollback
// and audit apply to it unchanged.
//
// The package is pure: it reads raftfsm state and writes nothing.
package drift

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Modes of ReleaseSpec.converge ("" reads as manual).
const (
	ModeManual = "manual"
	ModeAuto   = "auto"
)

// Desired returns the app's desired release: its last succeeded release
// (by creation), or nil when none succeeded. A rolled-back or aborted
// release never changes it.
func Desired(st *raftfsm.State, app string) *rollwavev1.Release {
	rs := st.Releases(app, rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED)
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

// Root returns the release a convergence chain started from: r itself,
// or the release r converges.
func Root(r *rollwavev1.Release) string {
	if c := r.GetConvergeOf(); c != "" {
		return c
	}
	return r.GetId()
}

// Hosts returns the drifted hosts of app against its desired release,
// sorted by host; nil when the app has no desired release.
func Hosts(st *raftfsm.State, app string) []*rollwavev1.DriftedHost {
	d := Desired(st, app)
	if d == nil {
		return nil
	}
	return against(st, d, st.Hosts())
}

// All returns the drifted hosts of every app, sorted by host, then app.
func All(st *raftfsm.State) []*rollwavev1.DriftedHost {
	hosts := st.Hosts()
	var out []*rollwavev1.DriftedHost
	for _, a := range st.Apps() {
		if d := Desired(st, a.GetName()); d != nil {
			out = append(out, against(st, d, hosts)...)
		}
	}
	slices.SortStableFunc(out, func(a, b *rollwavev1.DriftedHost) int {
		return strings.Compare(a.GetHost(), b.GetHost())
	})
	return out
}

func against(st *raftfsm.State, d *rollwavev1.Release, hosts []*rollwavev1.Host) []*rollwavev1.DriftedHost {
	app, version := d.GetSpec().GetApp(), d.GetSpec().GetVersion()
	var out []*rollwavev1.DriftedHost
	for _, h := range hosts {
		if !plan.Targets(d.GetSpec().GetTarget(), plan.HostInfo{ID: h.GetId(), Cell: h.GetCell(), Labels: h.GetLabels()}) {
			continue
		}
		cur := st.Assignment(h.GetId(), app)
		if cur != nil && !raftfsm.AssignmentEnded(cur.GetState()) {
			continue // a release is moving it right now
		}
		has := ActiveVersion(h, app)
		if has == version {
			continue
		}
		if cur.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED && cur.GetVersion() == version {
			continue // finalized on it; the slot facts have not caught up yet
		}
		if cur.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED &&
			st.Release(cur.GetReleaseId()).GetState() == rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED {
			// Finalized by a newer release in a region of it that
			// succeeded (parallel regions, fail_local): it is where
			// that release put it on purpose; converging it back
			// would undo the region's success.
			continue
		}
		out = append(out, &rollwavev1.DriftedHost{
			Host: h.GetId(), App: app, HasVersion: has, WantsVersion: version, ReleaseId: d.GetId(),
			Reason: reason(st, d, h, cur),
		})
	}
	return out
}

// ActiveVersion returns the version of app the host's active slot runs,
// from the slot facts its agent reported, or "".
func ActiveVersion(h *rollwavev1.Host, app string) string {
	for _, f := range h.GetApps() {
		if f.GetApp() != app {
			continue
		}
		switch f.GetActive() {
		case rollwavev1.Slot_SLOT_BLUE:
			return f.GetBlueVersion()
		case rollwavev1.Slot_SLOT_GREEN:
			return f.GetGreenVersion()
		}
	}
	return ""
}

// reason says why host h is not on d's version, from its last assignment
// of the app.
func reason(st *raftfsm.State, d *rollwavev1.Release, h *rollwavev1.Host, cur *rollwavev1.Assignment) string {
	if cur != nil && (cur.GetReleaseId() == d.GetId() || st.Release(cur.GetReleaseId()).GetConvergeOf() == Root(d)) {
		what := stateName(cur.GetState())
		switch cur.GetState() {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
			what = "reverted on its own after losing contact (reverted_isolated)"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED:
			what = "failed within the failure budget"
			if strings.HasPrefix(cur.GetReason(), "orchestrator: unreachable: ") {
				what = "was unreachable"
			}
		}
		return fmt.Sprintf("%s during release %s (generation %d, %s): %s", what, cur.GetReleaseId(), cur.GetGeneration(),
			time.Unix(0, cur.GetUpdatedUnixNano()).UTC().Format(time.RFC3339), cur.GetReason())
	}
	root := d
	if r := st.Release(Root(d)); r != nil {
		root = r
	}
	if h.GetFirstSeenUnixNano() > root.GetCreatedUnixNano() {
		return fmt.Sprintf("joined %s, after release %s was planned", time.Unix(0, h.GetFirstSeenUnixNano()).UTC().Format(time.RFC3339), root.GetId())
	}
	for _, p := range d.GetPhases() {
		if slices.Contains(p.GetHosts(), h.GetId()) {
			return fmt.Sprintf("in phase %d of release %s but never assigned", p.GetIndex(), d.GetId())
		}
	}
	return fmt.Sprintf("not in the plan of release %s (down or not alive when it was planned)", d.GetId())
}

func stateName(s rollwavev1.AssignmentState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ASSIGNMENT_STATE_"))
}

// Release builds the convergence release of d for hosts (in order): d's
// spec under a new id, one phase per host with the bake of d's first
// phase, no approvals, converge_of naming the chain's root. cellOf gives
// each host's cell.
func Release(d *rollwavev1.Release, id string, hosts []string, cellOf func(string) string, now time.Time, actor string) *rollwavev1.Release {
	sp := proto.Clone(d.GetSpec()).(*rollwavev1.ReleaseSpec)
	sp.Name = id
	var bake int64
	if ps := d.GetPhases(); len(ps) > 0 {
		bake = ps[0].GetBakeMs()
	}
	r := &rollwavev1.Release{
		Id: id, Spec: sp, State: rollwavev1.ReleaseState_RELEASE_STATE_PENDING, ConvergeOf: Root(d),
		CreatedUnixNano: now.UnixNano(), UpdatedUnixNano: now.UnixNano(), CreatedBy: actor,
	}
	for i, h := range hosts {
		r.Phases = append(r.Phases, &rollwavev1.Phase{
			Index: int32(i), State: rollwavev1.PhaseState_PHASE_STATE_PENDING,
			Hosts: []string{h}, Cells: []string{cellOf(h)}, BakeMs: bake,
		})
	}
	return r
}

// NextID returns an unused id for the next convergence release of d's
// chain: ROOT-converge-N.
func NextID(st *raftfsm.State, d *rollwavev1.Release) string {
	root := Root(d)
	for n := 1; ; n++ {
		id := fmt.Sprintf("%s-converge-%d", root, n)
		if st.Release(id) == nil {
			return id
		}
	}
}

// Attempts returns, for each host, how many convergence releases of the
// chain rooted at root included it and ended without it finalized, and
// when the last of them ended. The leader's auto-convergence backs off on
// these, so a host that keeps failing is not retried in a hot loop; being
// read from raft, a new leader backs off the same way.
func Attempts(st *raftfsm.State, app, root string) map[string]Attempt {
	out := map[string]Attempt{}
	for _, r := range st.Releases(app) {
		if r.GetConvergeOf() != root || !raftfsm.ReleaseTerminal(r.GetState()) {
			continue
		}
		// Only hosts the release tried: a phase never reached says
		// nothing about its host.
		tried, ok := map[string]bool{}, map[string]bool{}
		for _, a := range st.ReleaseAssignments(r.GetId()) {
			tried[a.GetHost()] = true
			if a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED {
				ok[a.GetHost()] = true
			}
		}
		for h := range tried {
			if ok[h] {
				continue
			}
			at := out[h]
			at.Failed++
			at.LastEnded = max(at.LastEnded, r.GetUpdatedUnixNano())
			out[h] = at
		}
	}
	return out
}

// Attempt counts a host's failed convergence attempts.
type Attempt struct {
	Failed    int
	LastEnded int64 // unix nanoseconds
}
