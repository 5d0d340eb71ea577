package plan

import (
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"pgregory.net/rapid"
)

// The properties below are checked over random fleets and specs. What "sizes
// never shrink" means here, precisely (see the package comment):
//
//   - the target size sequence is non-decreasing, ≥ 1, ≤ max_size;
//   - every phase takes exactly min(target, capacity) hosts, where capacity is
//     what the cell rules allow at that point (single-cell phase: the first
//     unfinished cell's remaining hosts, capped by per_cell_max; spanning
//     phase: the sum of that over all unfinished cells);
//   - so a phase is smaller than the one before only if it is the last phase
//     or it is capacity-bound (cut by the cell boundary or per_cell_max), and
//     with no per_cell_max and nothing single-cell to cut (one cell, or
//     parallel_cells_after = 1) sizes are non-decreasing except the last.

var (
	propCellNames = []string{"a", "b", "c", "d", "e", "db-1", "db-2", "web-1", "web-2"}
	propCellGlobs = []string{"*", "a", "[a-c]", "db-*", "web-?", "e"}
	propCrit      = []string{"low", "medium", "high", "critical", "", "Medium", "odd"}
	propRoles     = []string{"", "api", "worker"} // "" = no role label
)

func genFleet(t *rapid.T) Fleet {
	nc := rapid.IntRange(1, 7).Draw(t, "ncells")
	names := rapid.Permutation(propCellNames).Draw(t, "cells")[:nc]
	var f Fleet
	for _, n := range names {
		if rapid.Bool().Draw(t, "known_"+n) {
			// Small ranges so ties (and so the later tie-breakers) are common.
			f.Cells = append(f.Cells, &rollwavev1.Cell{
				Name:        n,
				Risk:        int32(rapid.IntRange(0, 2).Draw(t, "risk_"+n)),
				Criticality: rapid.SampledFrom(propCrit).Draw(t, "crit_"+n),
				Users:       rapid.Int64Range(0, 2).Draw(t, "users_"+n),
			})
		}
	}
	// Draw the count first: rapid keeps generated slices short, and the
	// interesting plans need dozens of hosts.
	n := rapid.IntRange(0, 150).Draw(t, "hosts")
	for i := range n {
		h := HostInfo{ID: fmt.Sprintf("h%03d", i), Cell: rapid.SampledFrom(names).Draw(t, "host_cell")}
		if role := rapid.SampledFrom(propRoles).Draw(t, "host_role"); role != "" {
			h.Labels = map[string]string{"role": role}
		}
		f.Hosts = append(f.Hosts, h)
	}
	// Input order must not matter; don't hand the planner sorted IDs.
	f.Hosts = rapid.Permutation(f.Hosts).Draw(t, "host_order")
	return f
}

func genSpec(t *rapid.T) *rollwavev1.ReleaseSpec {
	ph := &rollwavev1.PhasesSpec{
		Canary:             int32(rapid.IntRange(0, 6).Draw(t, "canary")),
		Growth:             rapid.SampledFrom([]string{"", "geometric", "linear"}).Draw(t, "growth"),
		PerCellMax:         int32(rapid.IntRange(0, 6).Draw(t, "per_cell_max")),
		ParallelCellsAfter: int32(rapid.IntRange(0, 5).Draw(t, "parallel_cells_after")),
	}
	if ph.Growth == "linear" {
		ph.Step = int32(rapid.IntRange(1, 5).Draw(t, "step"))
	} else {
		ph.Factor = rapid.OneOf(
			rapid.SampledFrom([]float64{0, 1.5, 2, 3}),
			rapid.Float64Range(1.01, 4),
		).Draw(t, "factor")
	}
	switch rapid.IntRange(0, 2).Draw(t, "max_size_kind") {
	case 1:
		ph.MaxSize = count(float64(rapid.IntRange(1, 20).Draw(t, "max_size_count")))
	case 2:
		ph.MaxSize = percent(rapid.Float64Range(0.5, 100).Draw(t, "max_size_percent"))
	}
	spec := &rollwavev1.ReleaseSpec{Phases: ph}
	if rapid.Bool().Draw(t, "has_target") {
		spec.Target = &rollwavev1.TargetSpec{
			Cells:   rapid.SliceOfN(rapid.SampledFrom(propCellGlobs), 0, 2).Draw(t, "target_cells"),
			Exclude: rapid.SliceOfN(rapid.SampledFrom([]string{"db-*", "e", "web-2"}), 0, 2).Draw(t, "target_exclude"),
		}
		if rapid.Bool().Draw(t, "target_label") {
			spec.Target.Labels = map[string]string{"role": "api"}
		}
	}
	spec.Bake = &rollwavev1.BakeSpec{
		FirstMs: rapid.Int64Range(0, 3_600_000).Draw(t, "bake_first"),
		Decay:   rapid.OneOf(rapid.Just(0.0), rapid.Just(1.0), rapid.Float64Range(0.01, 1)).Draw(t, "bake_decay"),
		MinMs:   rapid.Int64Range(0, 600_000).Draw(t, "bake_min"),
	}
	spec.Approval = &rollwavev1.ApprovalSpec{
		AfterPhases: rapid.SliceOfN(rapid.Int32Range(0, 12), 0, 3).Draw(t, "approval"),
	}
	return spec
}

// TestPlanProperties checks every property of a plan over random inputs.
func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec, fleet := genSpec(t), genFleet(t)
		p, err := Compute(spec, fleet)

		targeted := oracleTargeted(spec.GetTarget(), fleet.Hosts)
		if len(targeted) == 0 {
			if !errors.Is(err, ErrNoHosts) {
				t.Fatalf("no host is targeted: want ErrNoHosts, got %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Compute: %v", err)
		}
		checkCoverage(t, p, targeted)
		checkCellOrder(t, p, fleet.Cells, targeted)
		checkSizes(t, spec, p, targeted)
		checkBakeAndApproval(t, spec, p)

		// Determinism: the same inputs in another order give the same plan.
		shuffled := Fleet{
			Hosts: rapid.Permutation(fleet.Hosts).Draw(t, "hosts_order"),
			Cells: rapid.Permutation(fleet.Cells).Draw(t, "cells_order"),
		}
		again, err := Compute(spec, shuffled)
		if err != nil {
			t.Fatalf("Compute on shuffled fleet: %v", err)
		}
		if a, b := project(p), project(again); !reflect.DeepEqual(a, b) {
			t.Fatalf("plan depends on input order:\n%+v\n%+v", a, b)
		}
	})
}

// oracleTargeted is the targeting rule written out plainly: host ID → cell.
func oracleTargeted(tg *rollwavev1.TargetSpec, hosts []HostInfo) map[string]string {
	match := func(globs []string, cell string) bool {
		return slices.ContainsFunc(globs, func(g string) bool { ok, _ := path.Match(g, cell); return ok })
	}
	out := map[string]string{}
	for _, h := range hosts {
		if len(tg.GetCells()) > 0 && !match(tg.GetCells(), h.Cell) || match(tg.GetExclude(), h.Cell) {
			continue
		}
		if tg.GetLabels()["role"] != "" && h.Labels["role"] != tg.GetLabels()["role"] {
			continue
		}
		out[h.ID] = h.Cell
	}
	return out
}

// checkCoverage: every targeted host is in exactly one phase, no other host
// is, and phases are numbered 0.. and pending.
func checkCoverage(t *rapid.T, p *Plan, targeted map[string]string) {
	seen := map[string]int{}
	for i, ph := range p.Phases {
		if ph.Index != int32(i) || ph.State != rollwavev1.PhaseState_PHASE_STATE_PENDING {
			t.Fatalf("phase %d: index %d, state %v", i, ph.Index, ph.State)
		}
		if len(ph.Hosts) == 0 {
			t.Fatalf("phase %d is empty", i)
		}
		for _, h := range ph.Hosts {
			if _, ok := targeted[h]; !ok {
				t.Fatalf("phase %d has untargeted host %q", i, h)
			}
			if prev, dup := seen[h]; dup {
				t.Fatalf("host %q in phases %d and %d", h, prev, i)
			}
			seen[h] = i
		}
	}
	if len(seen) != len(targeted) || p.Targeted != len(targeted) {
		t.Fatalf("plan covers %d hosts (Targeted %d), want %d", len(seen), p.Targeted, len(targeted))
	}
}

// checkCellOrder: CellOrder is the targeted cells sorted by the rule; each
// phase lists its cells in that order and takes each cell's hosts in ID
// order; single-cell phases use the first unfinished cell; spanning phases
// never skip an earlier unfinished cell (they take all per_cell_max allows
// from it first); cells are started in order.
func checkCellOrder(t *rapid.T, p *Plan, records []*rollwavev1.Cell, targeted map[string]string) {
	hostsPer := map[string][]string{}
	for h, c := range targeted {
		hostsPer[c] = append(hostsPer[c], h)
	}
	want := oracleCellOrder(hostsPer, records)
	if !slices.Equal(p.CellOrder, want) {
		t.Fatalf("CellOrder = %v, want %v", p.CellOrder, want)
	}
	pos := map[string]int{}
	for i, c := range p.CellOrder {
		pos[c] = i
		slices.Sort(hostsPer[c])
	}
	dealt := map[string][]string{} // per cell, hosts in the order phases took them
	firstPhase := make([]int, len(want))
	for i := range firstPhase {
		firstPhase[i] = -1
	}
	for i, ph := range p.Phases {
		var cells []string
		for _, h := range ph.Hosts {
			c := targeted[h]
			if len(cells) == 0 || cells[len(cells)-1] != c {
				cells = append(cells, c)
			}
			dealt[c] = append(dealt[c], h)
		}
		if !slices.Equal(cells, ph.Cells) {
			t.Fatalf("phase %d: hosts come from cells %v (in this order), Cells says %v", i, cells, ph.Cells)
		}
		for k := 1; k < len(cells); k++ {
			if pos[cells[k-1]] >= pos[cells[k]] {
				t.Fatalf("phase %d: cells %v out of cell order %v", i, cells, p.CellOrder)
			}
		}
		for _, c := range cells {
			if firstPhase[pos[c]] < 0 {
				firstPhase[pos[c]] = i
			}
		}
	}
	for c, hs := range hostsPer {
		if !slices.Equal(dealt[c], hs) {
			t.Fatalf("cell %s: hosts dealt as %v, want ID order %v", c, dealt[c], hs)
		}
	}
	for i := 1; i < len(firstPhase); i++ {
		if firstPhase[i] < firstPhase[i-1] {
			t.Fatalf("cell %s starts in phase %d, before earlier cell %s (phase %d)",
				want[i], firstPhase[i], want[i-1], firstPhase[i-1])
		}
	}
}

type cellKey struct {
	unknown                   bool
	risk, crit, users, nhosts int64
	name                      string
}

func oracleCellOrder(hostsPer map[string][]string, records []*rollwavev1.Cell) []string {
	rank := map[string]int64{"low": 0, "medium": 1, "high": 2, "critical": 3}
	byName := map[string]*rollwavev1.Cell{}
	for _, r := range records {
		byName[r.GetName()] = r
	}
	var keys []cellKey
	for c, hs := range hostsPer {
		r, ok := byName[c]
		if !ok {
			keys = append(keys, cellKey{unknown: true, name: c}) // by name only
			continue
		}
		crit, ok := rank[strings.ToLower(r.Criticality)]
		if !ok {
			crit = 4
		}
		keys = append(keys, cellKey{risk: int64(r.Risk), crit: crit, users: r.Users, nhosts: int64(len(hs)), name: c})
	}
	less := func(a, b cellKey) bool {
		if a.unknown != b.unknown {
			return !a.unknown
		}
		for _, d := range []int64{a.risk - b.risk, a.crit - b.crit, a.users - b.users, a.nhosts - b.nhosts} {
			if d != 0 {
				return d < 0
			}
		}
		return a.name < b.name
	}
	slices.SortFunc(keys, func(a, b cellKey) int {
		if less(a, b) {
			return -1
		}
		return 1 // names are unique, so never equal
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}

// checkSizes: phase 0 is the canary from the least risky cell; targets grow;
// caps hold; every phase takes min(target, capacity); shrinking only at the
// last phase or a capacity-bound phase.
func checkSizes(t *rapid.T, spec *rollwavev1.ReleaseSpec, p *Plan, targeted map[string]string) {
	ph := spec.GetPhases()
	total := len(targeted)
	canary := max(1, int(ph.GetCanary()))
	perCell := int(ph.GetPerCellMax())
	capPerCell := func(n int) int {
		if perCell > 0 {
			return min(n, perCell)
		}
		return n
	}
	maxSize := total
	if q := ph.GetMaxSize(); q.GetValue() > 0 {
		v := q.GetValue()
		if q.GetPercent() {
			v = math.Ceil(v*float64(total)/100 - 1e-9) // forgive float noise, as the planner does
		}
		maxSize = max(1, min(total, int(v)))
	}

	// The planner's own target sequence, checked against the formula.
	params, err := resolveParams(spec)
	if err != nil {
		t.Fatalf("resolveParams: %v", err)
	}
	target := params.sizer(total)
	for n := range p.Phases {
		tn := target(n)
		if tn < 1 || tn > maxSize || (n > 0 && tn < target(n-1)) {
			t.Fatalf("target(%d) = %d (previous %d, max_size %d)", n, tn, target(max(0, n-1)), maxSize)
		}
		raw := float64(canary) + float64(n)*float64(ph.GetStep())
		if ph.GetGrowth() != "linear" {
			f := ph.GetFactor()
			if f == 0 {
				f = 2
			}
			raw = float64(canary) * math.Pow(f, float64(n))
		}
		// Uncapped, the target is raw rounded up (within float tolerance).
		if tn < maxSize && (float64(tn) < raw-1e-6 || float64(tn) >= raw+1) {
			t.Fatalf("target(%d) = %d, formula gives %g", n, tn, raw)
		}
	}

	remaining := make([]int, len(p.CellOrder))
	pos := map[string]int{}
	for i, c := range p.CellOrder {
		pos[c] = i
	}
	for _, c := range targeted {
		remaining[pos[c]]++
	}
	if want := min(canary, maxSize, capPerCell(remaining[0])); len(p.Phases[0].Hosts) != want ||
		!slices.Equal(p.Phases[0].Cells, p.CellOrder[:1]) {
		t.Fatalf("phase 0 = %d hosts from %v, want %d from %s", len(p.Phases[0].Hosts), p.Phases[0].Cells, want, p.CellOrder[0])
	}

	k := int(ph.GetParallelCellsAfter())
	prev := 0
	for n, phase := range p.Phases {
		single := k == 0 || n < k
		firstOpen := slices.IndexFunc(remaining, func(r int) bool { return r > 0 })
		capacity := capPerCell(remaining[firstOpen])
		if !single {
			capacity = 0
			for _, r := range remaining {
				capacity += capPerCell(r)
			}
		}
		taken := map[int]int{}
		for _, h := range phase.Hosts {
			taken[pos[targeted[h]]]++
		}
		size := len(phase.Hosts)
		if want := min(target(n), capacity); size != want {
			t.Fatalf("phase %d: %d hosts, want min(target %d, capacity %d)", n, size, target(n), capacity)
		}
		if size > maxSize {
			t.Fatalf("phase %d: %d hosts > max_size %d", n, size, maxSize)
		}
		if single && (len(taken) != 1 || taken[firstOpen] == 0) {
			t.Fatalf("single-cell phase %d draws from %v, want only %s", n, phase.Cells, p.CellOrder[firstOpen])
		}
		last := -1
		for c := range taken {
			last = max(last, c)
		}
		for c := range remaining {
			if perCell > 0 && taken[c] > perCell {
				t.Fatalf("phase %d takes %d hosts from %s, per_cell_max %d", n, taken[c], p.CellOrder[c], perCell)
			}
			// No skipping: an unfinished cell before the last one touched
			// gives all it may.
			if c < last && remaining[c] > 0 && taken[c] != capPerCell(remaining[c]) {
				t.Fatalf("phase %d takes %d from %s but %d from later %s", n, taken[c], p.CellOrder[c], taken[last], p.CellOrder[last])
			}
		}
		isLast := n == len(p.Phases)-1
		if n > 0 && size < prev && !isLast && size != capacity {
			t.Fatalf("phase %d shrank from %d to %d without being capacity-bound (capacity %d)", n, prev, size, capacity)
		}
		if n > 0 && size < prev && !isLast && perCell == 0 && (len(p.CellOrder) == 1 || k == 1) {
			t.Fatalf("phase %d shrank from %d to %d with nothing to cut it", n, prev, size)
		}
		for c, m := range taken {
			remaining[c] -= m
		}
		prev = size
	}
}

// checkBakeAndApproval: bakes start at max(min, first), never increase, never
// go below min; approval flags match after_phases.
func checkBakeAndApproval(t *rapid.T, spec *rollwavev1.ReleaseSpec, p *Plan) {
	b := spec.GetBake()
	if got, want := p.Phases[0].BakeMs, max(b.GetMinMs(), b.GetFirstMs()); got != want {
		t.Fatalf("phase 0 bake %d, want %d", got, want)
	}
	for i, ph := range p.Phases {
		if ph.BakeMs < b.GetMinMs() || (i > 0 && ph.BakeMs > p.Phases[i-1].BakeMs) {
			t.Fatalf("bakes %v: phase %d breaks min %d or non-increase", phaseBakes(p), i, b.GetMinMs())
		}
		if i > 0 && b.GetDecay() > 0 && b.GetDecay() < 1 {
			exact := float64(b.GetFirstMs()) * math.Pow(b.GetDecay(), float64(i))
			if want := max(float64(b.GetMinMs()), exact); math.Abs(float64(ph.BakeMs)-want) > 0.5+1e-6*want {
				t.Fatalf("phase %d bake %d, want about %g", i, ph.BakeMs, want)
			}
		}
		if want := slices.Contains(spec.GetApproval().GetAfterPhases(), int32(i)); ph.ApprovalRequired != want {
			t.Fatalf("phase %d approval_required %v, want %v", i, ph.ApprovalRequired, want)
		}
	}
}

type phaseView struct {
	Index            int32
	State            rollwavev1.PhaseState
	Hosts, Cells     []string
	BakeMs           int64
	ApprovalRequired bool
}

// project copies out what a plan says, for comparison.
func project(p *Plan) (out struct {
	Phases    []phaseView
	Targeted  int
	CellOrder []string
}) {
	for _, ph := range p.Phases {
		out.Phases = append(out.Phases, phaseView{ph.Index, ph.State, ph.Hosts, ph.Cells, ph.BakeMs, ph.ApprovalRequired})
	}
	out.Targeted, out.CellOrder = p.Targeted, p.CellOrder
	return out
}
