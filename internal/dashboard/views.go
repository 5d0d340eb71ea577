package dashboard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Host tile states, as the legend lists them.
var hostStates = []string{"idle", "deploying", "baking", "healthy", "failing", "reverted", "reverted_isolated", "abandoned", "held", "unreachable", "drifted"}

// versionClasses is how many version colours the stylesheet has
// (.v0 … .v7); more versions reuse them in turn.
const versionClasses = 8

type tile struct {
	ID, Cell, Version, VClass, State, Title string
}

type count struct {
	Label, VClass, State string
	N                    int
}

type cellRow struct {
	Name        string
	Risk        int32
	Criticality string
	Known       bool // the cell is defined (rollwave cells set)
	Tiles       []tile
	Counts      []count
	N           int
	OnTarget    int // hosts serving the newest version in the fleet
}

type legendItem struct{ Label, VClass, State string }

type fleetView struct {
	Cells       []cellRow
	Versions    []legendItem
	States      []legendItem
	Aggregated  bool
	Total       int
	Cell        string // drilled-down cell, or ""
	NewestLabel string
}

// serving returns the version a host serves (its active slot) for its
// first app, and that app.
func serving(h *rollwavev1.Host) (app, version string) {
	for _, f := range h.GetApps() {
		switch f.GetActive() {
		case rollwavev1.Slot_SLOT_BLUE:
			return f.GetApp(), f.GetBlueVersion()
		case rollwavev1.Slot_SLOT_GREEN:
			return f.GetApp(), f.GetGreenVersion()
		}
	}
	return "", ""
}

// latest returns the assignment updated last.
func latest(as []*rollwavev1.Assignment) *rollwavev1.Assignment {
	var out *rollwavev1.Assignment
	for _, a := range as {
		if out == nil || a.GetUpdatedUnixNano() > out.GetUpdatedUnixNano() {
			out = a
		}
	}
	return out
}

// hostState is a tile's state: unreachable first (nothing else can be
// trusted), then what its last assignment says, then drift (serving
// something other than its app's current version while no release of
// the app runs).
func hostState(hv *rollwavev1.HostView, current map[string]string, active map[string]bool) string {
	if !hv.GetConnected() && hv.GetLiveness() != "alive" {
		return "unreachable"
	}
	if a := latest(hv.GetAssignments()); a != nil {
		switch a.GetState() {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING:
			return "deploying"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING:
			return "baking"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING:
			return "failing"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED:
			return "reverted"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
			return "reverted_isolated"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_ABANDONED:
			return "abandoned"
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED:
			if app, v := serving(hv.GetHost()); current[app] != "" && v != current[app] && !active[app] {
				return "drifted"
			}
			return "healthy"
		default:
			return "held"
		}
	}
	if app, v := serving(hv.GetHost()); current[app] != "" && v != current[app] && !active[app] {
		return "drifted"
	}
	return "idle"
}

// appVersions returns each app's current version (its newest succeeded
// release) and whether a release of it is under way.
func appVersions(rs []*rollwavev1.Release) (current map[string]string, active map[string]bool) {
	current, active = map[string]string{}, map[string]bool{}
	newest := map[string]int64{}
	for _, r := range rs {
		app := r.GetSpec().GetApp()
		switch r.GetState() {
		case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			if r.GetUpdatedUnixNano() >= newest[app] {
				newest[app], current[app] = r.GetUpdatedUnixNano(), r.GetSpec().GetVersion()
			}
		case rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, rollwavev1.ReleaseState_RELEASE_STATE_PAUSED,
			rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL, rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
			rollwavev1.ReleaseState_RELEASE_STATE_WATCHING:
			active[app] = true
		}
	}
	return current, active
}

// versionOrder sorts version strings so that numeric parts compare as
// numbers ("2.10.0" after "2.9.0"); the legend and colours follow it.
func versionLess(a, b string) bool {
	as, bs := strings.FieldsFunc(a, isSep), strings.FieldsFunc(b, isSep)
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		var x, y int
		_, ex := fmt.Sscanf(as[i], "%d", &x)
		_, ey := fmt.Sscanf(bs[i], "%d", &y)
		if ex == nil && ey == nil && x != y {
			return x < y
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

func isSep(r rune) bool { return r == '.' || r == '-' || r == '+' }

// buildFleet turns the API's answers into rows: cells least risky first
// (risk, then name; undefined cells last), hosts as tiles, or counts per
// version and state when the fleet is larger than aggregateAbove and no
// cell is drilled into.
func buildFleet(hosts []*rollwavev1.HostView, cells []*rollwavev1.CellView, rels []*rollwavev1.Release, drill string, allTiles bool, aggregateAbove int) fleetView {
	current, active := appVersions(rels)
	rows := map[string]*cellRow{}
	for _, c := range cells {
		rows[c.GetCell().GetName()] = &cellRow{Name: c.GetCell().GetName(), Risk: c.GetCell().GetRisk(),
			Criticality: c.GetCell().GetCriticality(), Known: true}
	}
	versionSet := map[string]bool{}
	var tiles []tile
	for _, hv := range hosts {
		h := hv.GetHost()
		_, v := serving(h)
		versionSet[v] = true
		st := hostState(hv, current, active)
		tiles = append(tiles, tile{ID: h.GetId(), Cell: h.GetCell(), Version: v, State: st,
			Title: fmt.Sprintf("%s · %s · %s · %s", h.GetId(), h.GetCell(), orNone(v), st)})
	}
	versions := make([]string, 0, len(versionSet))
	for v := range versionSet {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	vclass := map[string]string{}
	fv := fleetView{Total: len(hosts), Cell: drill}
	for i, v := range versions {
		vclass[v] = fmt.Sprintf("v%d", i%versionClasses)
		if v == "" {
			vclass[v] = "vnone"
		}
		fv.Versions = append(fv.Versions, legendItem{Label: orNone(v), VClass: vclass[v]})
	}
	newest := ""
	if len(versions) > 0 {
		newest = versions[len(versions)-1]
	}
	fv.NewestLabel = orNone(newest)
	for _, s := range hostStates {
		fv.States = append(fv.States, legendItem{Label: strings.ReplaceAll(s, "_", " "), State: s})
	}
	fv.Aggregated = drill == "" && !allTiles && len(hosts) > aggregateAbove
	for _, t := range tiles {
		if drill != "" && t.Cell != drill {
			continue
		}
		row := rows[t.Cell]
		if row == nil {
			row = &cellRow{Name: t.Cell}
			rows[t.Cell] = row
		}
		t.VClass = vclass[t.Version]
		row.N++
		if t.Version == newest {
			row.OnTarget++
		}
		if fv.Aggregated {
			addCount(row, t)
		} else {
			row.Tiles = append(row.Tiles, t)
		}
	}
	for _, r := range rows {
		if drill != "" && r.Name != drill {
			continue
		}
		if r.N == 0 && !r.Known {
			continue
		}
		sort.Slice(r.Tiles, func(i, j int) bool { return r.Tiles[i].ID < r.Tiles[j].ID })
		sort.Slice(r.Counts, func(i, j int) bool {
			if r.Counts[i].Label != r.Counts[j].Label {
				return versionLess(r.Counts[i].Label, r.Counts[j].Label)
			}
			return r.Counts[i].State < r.Counts[j].State
		})
		fv.Cells = append(fv.Cells, *r)
	}
	sort.Slice(fv.Cells, func(i, j int) bool {
		a, b := fv.Cells[i], fv.Cells[j]
		if a.Known != b.Known {
			return a.Known
		}
		if a.Risk != b.Risk {
			return a.Risk < b.Risk
		}
		return a.Name < b.Name
	})
	return fv
}

func addCount(row *cellRow, t tile) {
	label := orNone(t.Version)
	for i := range row.Counts {
		if row.Counts[i].Label == label && row.Counts[i].State == t.State {
			row.Counts[i].N++
			return
		}
	}
	row.Counts = append(row.Counts, count{Label: label, VClass: t.VClass, State: t.State, N: 1})
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// ---------------------------------------------------------------- releases

type releaseRow struct {
	ID, App, Version, State, StateClass, CreatedBy, Created, Reason string
	PhasesDone, PhaseCount                                          int
	Progress                                                        int // percent of phases verified
}

func stateName(s rollwavev1.ReleaseState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RELEASE_STATE_"))
}

func phaseName(s rollwavev1.PhaseState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PHASE_STATE_"))
}

func assignmentName(s rollwavev1.AssignmentState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ASSIGNMENT_STATE_"))
}

func fmtTime(unixNano int64) string {
	if unixNano == 0 {
		return ""
	}
	return time.Unix(0, unixNano).UTC().Format("2006-01-02 15:04:05Z")
}

func releaseRowOf(r *rollwavev1.Release) releaseRow {
	row := releaseRow{ID: r.GetId(), App: r.GetSpec().GetApp(), Version: r.GetSpec().GetVersion(),
		State: stateName(r.GetState()), CreatedBy: r.GetCreatedBy(), Created: fmtTime(r.GetCreatedUnixNano()),
		Reason: r.GetReason(), PhaseCount: len(r.GetPhases())}
	row.StateClass = "st-" + row.State
	for _, p := range r.GetPhases() {
		if p.GetState() == rollwavev1.PhaseState_PHASE_STATE_VERIFIED {
			row.PhasesDone++
		}
	}
	if row.PhaseCount > 0 {
		row.Progress = row.PhasesDone * 100 / row.PhaseCount
	}
	return row
}

type releasesView struct{ Releases []releaseRow }

func buildReleases(rs []*rollwavev1.Release) releasesView {
	rs = slices.Clone(rs)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].GetCreatedUnixNano() > rs[j].GetCreatedUnixNano() })
	var v releasesView
	for _, r := range rs {
		v.Releases = append(v.Releases, releaseRowOf(r))
	}
	return v
}

type phaseRow struct {
	Index                     int32
	State                     string
	Hosts                     int
	HostNames                 string
	Cells                     string
	Bake                      string
	BakeDeadlineMS            int64 // unix ms; 0 = no countdown
	Started, Finished, Reason string
	Awaiting, Approved        bool
	Current                   bool
	// Traffic sums up the phase's switched hosts by the new version's
	// share of their traffic ("2×100% 1×0% (dark)").
	Traffic string
	// Region is a regional phase's region (phases.parallel_regions_after).
	Region string
}

// regionRow is one region of a release with parallel regions.
type regionRow struct {
	Name, State, Phase, Reason string
}

type gateRow struct {
	Name, Threshold, Reading, Result, Detail, At string
}

type eventRow struct {
	Seq               uint64
	Time, Kind, Actor string
	Host              string
	Phase             int32
	Message           string
	Evidence          []kv
}

type kv struct{ K, V string }

type assignmentRow struct {
	Host, State, Version, Reason string
	Phase                        int32
	Generation                   uint64
	// Traffic is the new version's share of the host's traffic, from
	// its agent ("" when not switched to it).
	Traffic string
}

type releaseView struct {
	releaseRow
	Phases      []phaseRow
	Regions     []regionRow
	Gates       []gateRow
	Events      []eventRow
	Assignments []assignmentRow
	Spec        string
	SourceName  string
	Actions     []string
}

// actionsFor lists what an operator may do to a release in its state, in
// the order the buttons are drawn. The API decides; this draws only the
// buttons that can succeed.
func actionsFor(s rollwavev1.ReleaseState) []string {
	switch s {
	case rollwavev1.ReleaseState_RELEASE_STATE_RUNNING:
		return []string{"pause", "promote", "rollback", "abort"}
	case rollwavev1.ReleaseState_RELEASE_STATE_PAUSED:
		return []string{"resume", "rollback", "abort"}
	case rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL:
		return []string{"approve", "rollback", "abort"}
	case rollwavev1.ReleaseState_RELEASE_STATE_PENDING:
		return []string{"abort"}
	case rollwavev1.ReleaseState_RELEASE_STATE_WATCHING:
		return []string{"rollback", "abort"}
	}
	return nil
}

func buildRelease(resp *rollwavev1.GetReleaseResponse, events []*rollwavev1.Event) releaseView {
	r := resp.GetRelease()
	v := releaseView{releaseRow: releaseRowOf(r), SourceName: r.GetSourceName(),
		Actions: actionsFor(r.GetState())}
	traffic := map[string]string{}
	phaseTraffic := map[int32][]string{}
	phaseCount := map[int32]map[string]int{}
	for _, t := range resp.GetTraffic() {
		k := trafficText(t)
		traffic[t.GetHost()] = k
		if phaseCount[t.GetPhase()] == nil {
			phaseCount[t.GetPhase()] = map[string]int{}
		}
		if phaseCount[t.GetPhase()][k] == 0 {
			phaseTraffic[t.GetPhase()] = append(phaseTraffic[t.GetPhase()], k)
		}
		phaseCount[t.GetPhase()][k]++
	}
	for _, p := range r.GetPhases() {
		pr := phaseRow{Index: p.GetIndex(), State: phaseName(p.GetState()), Hosts: len(p.GetHosts()),
			HostNames: strings.Join(p.GetHosts(), ", "), Cells: strings.Join(p.GetCells(), ", "),
			Bake: (time.Duration(p.GetBakeMs()) * time.Millisecond).String(), Started: fmtTime(p.GetStartedUnixNano()),
			Finished: fmtTime(p.GetFinishedUnixNano()), Reason: p.GetReason(),
			Awaiting: p.GetApprovalRequired() && !p.GetApproved(), Approved: p.GetApproved(),
			Current: p.GetIndex() == r.GetCurrentPhase(), Region: p.GetRegion()}
		var parts []string
		for _, k := range phaseTraffic[p.GetIndex()] {
			parts = append(parts, fmt.Sprintf("%d×%s", phaseCount[p.GetIndex()][k], k))
		}
		pr.Traffic = strings.Join(parts, " ")
		if p.GetState() == rollwavev1.PhaseState_PHASE_STATE_BAKING && p.GetBakeDeadlineUnixNano() > 0 {
			pr.BakeDeadlineMS = p.GetBakeDeadlineUnixNano() / int64(time.Millisecond)
		}
		v.Phases = append(v.Phases, pr)
	}
	for _, g := range r.GetRegions() {
		v.Regions = append(v.Regions, regionRow{Name: g.GetRegion(), State: stateName(g.GetState()),
			Phase: fmt.Sprintf("%d of phases %d-%d", g.GetCurrentPhase(), g.GetFirstPhase(), g.GetFirstPhase()+g.GetPhaseCount()-1), Reason: g.GetReason()})
	}
	v.Gates = gateRows(r.GetSpec().GetGates(), events)
	for i := len(events) - 1; i >= 0 && len(v.Events) < 200; i-- {
		e := events[i]
		er := eventRow{Seq: e.GetSeq(), Time: fmtTime(e.GetTimeUnixNano()), Kind: e.GetKind(), Actor: e.GetActor(),
			Host: e.GetHost(), Phase: e.GetPhase(), Message: e.GetMessage()}
		for k, val := range e.GetEvidence() {
			er.Evidence = append(er.Evidence, kv{k, val})
		}
		sort.Slice(er.Evidence, func(i, j int) bool { return er.Evidence[i].K < er.Evidence[j].K })
		v.Events = append(v.Events, er)
	}
	for _, a := range resp.GetAssignments() {
		v.Assignments = append(v.Assignments, assignmentRow{Host: a.GetHost(), State: assignmentName(a.GetState()),
			Version: a.GetVersion(), Reason: a.GetReason(), Phase: a.GetPhase(), Generation: a.GetGeneration(), Traffic: traffic[a.GetHost()]})
	}
	sort.Slice(v.Assignments, func(i, j int) bool { return v.Assignments[i].Host < v.Assignments[j].Host })
	if len(r.GetSource()) > 0 {
		v.Spec = string(r.GetSource())
	} else {
		v.Spec = prototext.MarshalOptions{Multiline: true}.Format(r.GetSpec())
	}
	return v
}

// gateRows pairs each gate's threshold from the spec with its newest
// reading from the audit events (gate.passed/failed/inconclusive carry
// the value and the limit as evidence).
func gateRows(g *rollwavev1.GatesSpec, events []*rollwavev1.Event) []gateRow {
	quantity := func(q *rollwavev1.Quantity) string {
		switch {
		case q == nil:
			return "—"
		case q.GetPercent():
			return fmt.Sprintf("%g%%", q.GetValue())
		}
		return fmt.Sprintf("%g", q.GetValue())
	}
	off := func(v float64) string {
		if v == 0 {
			return "off"
		}
		return fmt.Sprintf("%g", v)
	}
	// Named as the orchestrator names its readings (rollout/gates.go).
	rows := []gateRow{
		{Name: "max_failed_hosts", Threshold: quantity(g.GetMaxFailedHosts())},
		{Name: "max_unreachable", Threshold: quantity(g.GetMaxUnreachable())},
		{Name: "max_cpu_percent", Threshold: off(g.GetMaxCpuPercent())},
		{Name: "max_mem_percent", Threshold: off(g.GetMaxMemPercent())},
		{Name: "max_restarts", Threshold: off(float64(g.GetMaxRestarts()))},
		{Name: "baseline", Threshold: orNone(g.GetBaseline())},
	}
	index := map[string]int{}
	for i, r := range rows {
		index[r.Name] = i
	}
	for _, e := range events {
		result, ok := strings.CutPrefix(e.GetKind(), "gate.")
		if !ok {
			continue
		}
		name := e.GetEvidence()["gate"]
		i, known := index[name]
		if !known {
			rows = append(rows, gateRow{Name: name, Threshold: e.GetEvidence()["limit"]})
			i = len(rows) - 1
			index[name] = i
		}
		rows[i].Reading = e.GetEvidence()["value"]
		if l := e.GetEvidence()["limit"]; l != "" {
			rows[i].Threshold = l
		}
		rows[i].Result, rows[i].Detail, rows[i].At = result, e.GetEvidence()["detail"], fmtTime(e.GetTimeUnixNano())
	}
	return rows
}

// ---------------------------------------------------------------- host

type slotRow struct {
	App, Active, Blue, Green, BlueState, GreenState string
	// Weight is the active slot's share of new traffic: "100%", a
	// weighted step's "10% (old slot 90%)" or "0% (dark)".
	Weight string
}

// slotWeight is the active slot's share of new traffic, from the facts.
func slotWeight(f *rollwavev1.SlotFacts) string {
	switch {
	case f.GetDark() && f.GetShadow():
		return "0% (dark, shadow)"
	case f.GetDark():
		return "0% (dark)"
	case f.GetTrafficWeight() > 0:
		return fmt.Sprintf("%d%% (old slot %d%%)", f.GetTrafficWeight(), 100-f.GetTrafficWeight())
	}
	return "100%"
}

// trafficText is a release host's share of traffic on the new version.
func trafficText(t *rollwavev1.HostTraffic) string {
	s := fmt.Sprintf("%d%%", t.GetNewWeight())
	switch {
	case t.GetDark() && t.GetShadow():
		s += " (dark, shadow)"
	case t.GetDark():
		s += " (dark)"
	}
	return s
}

// slotUse is one slot's resource use from the latest heartbeat.
type slotUse struct {
	App, Slot, Version, CPU, RSS, HealthyFor, CheckError string
	Healthy                                              bool
	Restarts                                             uint32
}

// slotTraffic is what the agent's proxy saw for one slot since its
// previous heartbeat.
type slotTraffic struct {
	App, Slot, Version, Protocol, P99 string
	Requests, Errors, Upstream        uint64
}

// hostMetrics is the latest heartbeat the leader received from the host.
type hostMetrics struct {
	Received, CPU, Mem, Load, Disk string
	Slots                          []slotUse
	Traffic                        []slotTraffic
}

type hostView struct {
	ID, Cell, Region, Address, AgentVersion, Liveness, LastContact, FirstSeen, State string
	Connected                                                                        bool
	Labels                                                                           []kv
	Slots                                                                            []slotRow
	Metrics                                                                          *hostMetrics // nil: the leader has no heartbeat from it
	Assignments                                                                      []assignmentRow
	Events                                                                           []eventRow
}

func slotName(s rollwavev1.Slot) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SLOT_"))
}

// metricsOf formats a heartbeat sample for the host view.
func metricsOf(m *rollwavev1.HostSample) *hostMetrics {
	if m == nil {
		return nil
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", v) }
	out := &hostMetrics{Received: fmtTime(m.GetReceivedUnixNano()), CPU: pct(m.GetHost().GetCpuPercent()),
		Mem: pct(m.GetHost().GetMemPercent()), Load: fmt.Sprintf("%.2f", m.GetHost().GetLoad1()), Disk: pct(m.GetHost().GetDiskPercent())}
	for _, s := range m.GetSlots() {
		out.Slots = append(out.Slots, slotUse{App: s.GetApp(), Slot: slotName(s.GetSlot()), Version: s.GetVersion(),
			CPU: pct(s.GetCpuPercent()), RSS: fmt.Sprintf("%.1f MiB", float64(s.GetRssBytes())/(1<<20)),
			HealthyFor: (time.Duration(s.GetHealthyForMs()) * time.Millisecond).Round(time.Second).String(),
			CheckError: s.GetLastCheckError(), Healthy: s.GetHealthy(), Restarts: s.GetRestarts()})
	}
	for _, r := range m.GetRequests() {
		out.Traffic = append(out.Traffic, slotTraffic{App: r.GetApp(), Slot: slotName(r.GetSlot()), Version: r.GetVersion(),
			Protocol: r.GetProtocol(), P99: fmt.Sprintf("%.1f ms", r.GetP99Ms()), Requests: r.GetRequests(),
			Errors: r.GetErrors(), Upstream: r.GetUpstreamErrors()})
	}
	return out
}

func buildHost(hv *rollwavev1.HostView, rels []*rollwavev1.Release, events []*rollwavev1.Event) hostView {
	h := hv.GetHost()
	current, active := appVersions(rels)
	v := hostView{ID: h.GetId(), Cell: h.GetCell(), Region: h.GetRegion(), Address: h.GetAddress(),
		AgentVersion: h.GetAgentVersion(), Liveness: hv.GetLiveness(), Connected: hv.GetConnected(),
		LastContact: fmtTime(h.GetLastContactUnixNano()), FirstSeen: fmtTime(h.GetFirstSeenUnixNano()),
		State: hostState(hv, current, active), Metrics: metricsOf(hv.GetMetrics())}
	for k, val := range h.GetLabels() {
		v.Labels = append(v.Labels, kv{k, val})
	}
	sort.Slice(v.Labels, func(i, j int) bool { return v.Labels[i].K < v.Labels[j].K })
	for _, f := range h.GetApps() {
		v.Slots = append(v.Slots, slotRow{App: f.GetApp(), Active: strings.ToLower(strings.TrimPrefix(f.GetActive().String(), "SLOT_")),
			Blue: f.GetBlueVersion(), Green: f.GetGreenVersion(), BlueState: f.GetBlueState(), GreenState: f.GetGreenState(), Weight: slotWeight(f)})
	}
	for _, a := range hv.GetAssignments() {
		v.Assignments = append(v.Assignments, assignmentRow{Host: a.GetReleaseId(), State: assignmentName(a.GetState()),
			Version: a.GetVersion(), Reason: a.GetReason(), Phase: a.GetPhase(), Generation: a.GetGeneration()})
	}
	for i := len(events) - 1; i >= 0 && len(v.Events) < 30; i-- {
		e := events[i]
		if e.GetHost() != h.GetId() && e.GetEvidence()["host."+h.GetId()] == "" {
			continue
		}
		v.Events = append(v.Events, eventRow{Seq: e.GetSeq(), Time: fmtTime(e.GetTimeUnixNano()), Kind: e.GetKind(),
			Actor: e.GetActor(), Host: e.GetReleaseId(), Phase: e.GetPhase(), Message: e.GetMessage()})
	}
	return v
}

// ---------------------------------------------------------------- header

type headerView struct {
	Node, Leader, RaftState string
	Err                     string
}

func (d *Dashboard) header(ctx context.Context, secret string) headerView {
	cctx, cancel := d.callCtx(ctx, secret)
	defer cancel()
	st, err := d.cfg.API.Status(cctx, &rollwavev1.StatusRequest{})
	if err != nil {
		return headerView{Err: err.Error()}
	}
	leader := st.GetLeaderId()
	if leader == "" {
		leader = "none (election under way?)"
	}
	return headerView{Node: st.GetNodeId(), Leader: leader, RaftState: strings.ToLower(st.GetRaftState())}
}
