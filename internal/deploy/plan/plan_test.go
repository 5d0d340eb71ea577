package plan

import (
	"slices"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestComputeDesignExample plans the release in DESIGN.md ("A release spec")
// over three cells plus an excluded database cell, and checks every field.
func TestComputeDesignExample(t *testing.T) {
	spec := &rollwavev1.ReleaseSpec{
		Name:   "api-2.4.0",
		Target: &rollwavev1.TargetSpec{Cells: []string{"*"}, Exclude: []string{"db-*"}},
		Phases: &rollwavev1.PhasesSpec{
			Canary: 1, Growth: "geometric", Factor: 2, Step: 0,
			MaxSize: percent(25), PerCellMax: 10, ParallelCellsAfter: 3,
		},
		Bake:     &rollwavev1.BakeSpec{FirstMs: 30 * 60_000, Decay: 0.5, MinMs: 5 * 60_000},
		Approval: &rollwavev1.ApprovalSpec{AfterPhases: []int32{0}},
	}
	fleet := fleetOf("us", 20, "db-1", 4, "eu", 12, "edge", 8)
	fleet.Cells = []*rollwavev1.Cell{
		cellRec("us", 2, "high", 20000),
		cellRec("eu", 1, "medium", 5000),
		cellRec("edge", 0, "low", 100),
		cellRec("db-1", 0, "low", 0), // least risky of all, but excluded
	}
	p := mustCompute(t, spec, fleet)

	if p.Targeted != 40 {
		t.Errorf("Targeted = %d, want 40", p.Targeted)
	}
	if want := []string{"edge", "eu", "us"}; !slices.Equal(p.CellOrder, want) {
		t.Errorf("CellOrder = %v, want %v", p.CellOrder, want)
	}
	// Targets 1, 2, 4, 8, then max_size 25% of 40 = 10. Phases 0-2 are
	// single-cell (edge); phase 3 may span: edge's last host + 7 of eu.
	// Phase 5 is held to 10 by per_cell_max with only "us" left.
	if want := []int{1, 2, 4, 8, 10, 10, 5}; !slices.Equal(phaseSizes(p), want) {
		t.Errorf("sizes = %v, want %v", phaseSizes(p), want)
	}
	wantCells := [][]string{{"edge"}, {"edge"}, {"edge"}, {"edge", "eu"}, {"eu", "us"}, {"us"}, {"us"}}
	if got := phaseCells(p); !slices.EqualFunc(got, wantCells, slices.Equal) {
		t.Errorf("cells = %v, want %v", got, wantCells)
	}
	wantP3 := []string{"edge-08", "eu-01", "eu-02", "eu-03", "eu-04", "eu-05", "eu-06", "eu-07"}
	if !slices.Equal(p.Phases[3].Hosts, wantP3) {
		t.Errorf("phase 3 hosts = %v, want %v", p.Phases[3].Hosts, wantP3)
	}
	// 30m, 15m, 7.5m, then the 5m floor.
	if want := []int64{1_800_000, 900_000, 450_000, 300_000, 300_000, 300_000, 300_000}; !slices.Equal(phaseBakes(p), want) {
		t.Errorf("bakes = %v, want %v", phaseBakes(p), want)
	}
	for i, ph := range p.Phases {
		if ph.Index != int32(i) || ph.State != rollwavev1.PhaseState_PHASE_STATE_PENDING {
			t.Errorf("phase %d: index %d state %v, want index %d PENDING", i, ph.Index, ph.State, i)
		}
		if ph.ApprovalRequired != (i == 0) {
			t.Errorf("phase %d: approval_required = %v", i, ph.ApprovalRequired)
		}
	}
}

// TestComputeSizes checks phase sizes (and where it matters, cells) for
// growth, rounding, caps and the cell rules.
func TestComputeSizes(t *testing.T) {
	ordered := []*rollwavev1.Cell{cellRec("a", 0, "low", 0), cellRec("b", 1, "low", 0), cellRec("c", 2, "low", 0)}
	withCells := func(f Fleet) Fleet { f.Cells = ordered; return f }
	with := func(s *rollwavev1.ReleaseSpec, edit func(*rollwavev1.PhasesSpec)) *rollwavev1.ReleaseSpec {
		edit(s.Phases)
		return s
	}
	cases := []struct {
		name      string
		spec      *rollwavev1.ReleaseSpec
		fleet     Fleet
		wantSizes []int
		wantCells [][]string // nil: not checked
	}{
		// Linear: canary 2, +3 each phase: 2, 5, 8, then the remaining 5.
		{"linear", linear(2, 3), fleetOf("a", 20), []int{2, 5, 8, 5}, nil},
		// Geometric on the same fleet: 2, 4, 8, then the remaining 6.
		{"geometric", geometric(2, 2), fleetOf("a", 20), []int{2, 4, 8, 6}, nil},
		// 1.5^n rounded up: 1, 1.5→2, 2.25→3, 3.375→4, 5.06→6, 7.59→8, 11.39→12, rest 4.
		{"factor 1.5", geometric(1, 1.5), fleetOf("a", 40), []int{1, 2, 3, 4, 6, 8, 12, 4}, nil},
		// 2×1.5^n: 2, 3, 4.5→5, 6.75→7, 10.125→11, rest 2.
		{"factor 1.5 canary 2", geometric(2, 1.5), fleetOf("a", 30), []int{2, 3, 5, 7, 11, 2}, nil},
		// 225×1.08 is 243.00000000000003 in float64; it must be 243, not 244.
		{"no float drift in ceil", geometric(225, 1.08), fleetOf("a", 600), []int{225, 243, 132}, nil},
		// Zero canary, growth and factor mean 1, geometric, 2.
		{"defaults", geometric(0, 0), fleetOf("a", 10), []int{1, 2, 4, 3}, nil},
		// max_size 5: 1, 2, 4, then 5 at a time.
		{"max_size count", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.MaxSize = count(5) }),
			fleetOf("a", 20), []int{1, 2, 4, 5, 5, 3}, nil},
		// max_size 30% of 20 = 6.
		{"max_size percent", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.MaxSize = percent(30) }),
			fleetOf("a", 20), []int{1, 2, 4, 6, 6, 1}, nil},
		// 10% of 15 = 1.5, rounded up to 2.
		{"max_size percent rounds up", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.MaxSize = percent(10) }),
			fleetOf("a", 15), []int{1, 2, 2, 2, 2, 2, 2, 2}, nil},
		// 1% of 5 = 0.05, but a phase is at least one host.
		{"max_size percent at least 1", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.MaxSize = percent(1) }),
			fleetOf("a", 5), []int{1, 1, 1, 1, 1}, nil},
		// The canary is capped by max_size too.
		{"canary capped by max_size", with(geometric(5, 2), func(p *rollwavev1.PhasesSpec) { p.MaxSize = count(3) }),
			fleetOf("a", 10), []int{3, 3, 3, 1}, nil},
		// ...and by per_cell_max; single-cell phases then stay at 2.
		{"canary capped by per_cell_max", with(geometric(3, 2), func(p *rollwavev1.PhasesSpec) { p.PerCellMax = 2 }),
			fleetOf("a", 10), []int{2, 2, 2, 2, 2}, nil},
		// Canary 5 but the least risky cell has 3: phase 0 takes 3 and does not
		// reach into b; phase 1 (target 10) is all of b.
		{"canary larger than first cell", geometric(5, 2), withCells(fleetOf("b", 10, "a", 3)),
			[]int{3, 10}, [][]string{{"a"}, {"b"}}},
		// per_cell_max 2, spanning from phase 1: phase 2 takes 2 from a and 2
		// from b; phase 3 (target 8) gets a's last host + 2 of b.
		{"per_cell_max", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.PerCellMax = 2; p.ParallelCellsAfter = 1 }),
			withCells(fleetOf("a", 6, "b", 6)), []int{1, 2, 4, 3, 2},
			[][]string{{"a"}, {"a"}, {"a", "b"}, {"a", "b"}, {"b"}}},
		// parallel_cells_after 0: never span; each phase ends at its cell's edge.
		{"never parallel", geometric(1, 2), withCells(fleetOf("a", 3, "b", 3, "c", 3)),
			[]int{1, 2, 3, 3}, [][]string{{"a"}, {"a"}, {"b"}, {"c"}}},
		// parallel_cells_after 2: phases 0-1 single-cell, phase 2 spans b and c.
		{"parallel after 2", with(geometric(1, 2), func(p *rollwavev1.PhasesSpec) { p.ParallelCellsAfter = 2 }),
			withCells(fleetOf("a", 3, "b", 3, "c", 3)), []int{1, 2, 4, 2},
			[][]string{{"a"}, {"a"}, {"b", "c"}, {"c"}}},
		// parallel_cells_after 1 with a big target: phase 1 takes everything left.
		{"parallel after 1 drains", with(geometric(1, 10), func(p *rollwavev1.PhasesSpec) { p.ParallelCellsAfter = 1 }),
			withCells(fleetOf("a", 3, "b", 3, "c", 3)), []int{1, 8},
			[][]string{{"a"}, {"a", "b", "c"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompute(t, tc.spec, tc.fleet)
			if got := phaseSizes(p); !slices.Equal(got, tc.wantSizes) {
				t.Errorf("sizes = %v, want %v", got, tc.wantSizes)
			}
			if tc.wantCells != nil {
				if got := phaseCells(p); !slices.EqualFunc(got, tc.wantCells, slices.Equal) {
					t.Errorf("cells = %v, want %v", got, tc.wantCells)
				}
			}
		})
	}
}

// TestCellOrder checks each tie-breaker of the cell order in turn.
func TestCellOrder(t *testing.T) {
	cases := []struct {
		name  string
		fleet Fleet
		cells []*rollwavev1.Cell
		want  []string
	}{
		// Risk decides first, over criticality and users.
		{"risk", fleetOf("a", 1, "b", 1),
			[]*rollwavev1.Cell{cellRec("a", 2, "low", 0), cellRec("b", 1, "critical", 9999)}, []string{"b", "a"}},
		// Same risk: low < medium < high < critical.
		{"criticality", fleetOf("a", 1, "b", 1, "c", 1, "d", 1),
			[]*rollwavev1.Cell{cellRec("a", 0, "critical", 0), cellRec("b", 0, "high", 0), cellRec("c", 0, "medium", 0), cellRec("d", 0, "low", 0)},
			[]string{"d", "c", "b", "a"}},
		// Criticality is case-insensitive; an unreadable one sorts after critical.
		{"criticality unknown", fleetOf("a", 1, "b", 1, "c", 1),
			[]*rollwavev1.Cell{cellRec("a", 0, "", 0), cellRec("b", 0, "Critical", 0), cellRec("c", 0, "LOW", 0)},
			[]string{"c", "b", "a"}},
		// Same risk and criticality: fewer users first.
		{"users", fleetOf("a", 1, "b", 1),
			[]*rollwavev1.Cell{cellRec("a", 0, "low", 500), cellRec("b", 0, "low", 10)}, []string{"b", "a"}},
		// Then fewer hosts.
		{"hosts", fleetOf("a", 3, "b", 2),
			[]*rollwavev1.Cell{cellRec("a", 0, "low", 0), cellRec("b", 0, "low", 0)}, []string{"b", "a"}},
		// Then name.
		{"name", fleetOf("b", 2, "a", 2),
			[]*rollwavev1.Cell{cellRec("a", 0, "low", 0), cellRec("b", 0, "low", 0)}, []string{"a", "b"}},
		// Cells without a record go after every known cell, however risky,
		// and among themselves by name only (not by host count).
		{"unknown cells last", fleetOf("z", 1, "y", 5, "a", 50),
			[]*rollwavev1.Cell{cellRec("a", 9, "critical", 1e6)}, []string{"a", "y", "z"}},
		// Records for cells without targeted hosts do not appear.
		{"records without hosts", fleetOf("a", 1),
			[]*rollwavev1.Cell{cellRec("a", 1, "low", 0), cellRec("empty", 0, "low", 0), nil}, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fleet.Cells = tc.cells
			p := mustCompute(t, geometric(1, 2), tc.fleet)
			if !slices.Equal(p.CellOrder, tc.want) {
				t.Errorf("CellOrder = %v, want %v", p.CellOrder, tc.want)
			}
			if p.Phases[0].Cells[0] != tc.want[0] {
				t.Errorf("canary cell = %q, want %q", p.Phases[0].Cells[0], tc.want[0])
			}
		})
	}
}

// TestTargeting checks which hosts a target selects.
func TestTargeting(t *testing.T) {
	fleet := fleetOf("web-1", 2, "web-2", 2, "web-3", 1, "db-1", 2)
	fleet.Hosts[0].Labels = map[string]string{"role": "api", "tier": "1"}
	fleet.Hosts[1].Labels = map[string]string{"role": "worker"}
	fleet.Hosts[2].Labels = map[string]string{"role": "api"}
	cases := []struct {
		name   string
		target *rollwavev1.TargetSpec
		want   []string // targeted host IDs, sorted
	}{
		// No target block: every host.
		{"all", nil, []string{"db-1-01", "db-1-02", "web-1-01", "web-1-02", "web-2-01", "web-2-02", "web-3-01"}},
		// A glob over cell names.
		{"cells glob", &rollwavev1.TargetSpec{Cells: []string{"web-*"}},
			[]string{"web-1-01", "web-1-02", "web-2-01", "web-2-02", "web-3-01"}},
		// Any of several globs, including a character class.
		{"several globs", &rollwavev1.TargetSpec{Cells: []string{"web-[12]", "db-1"}},
			[]string{"db-1-01", "db-1-02", "web-1-01", "web-1-02", "web-2-01", "web-2-02"}},
		// Exclude wins over cells; empty cells means all.
		{"exclude", &rollwavev1.TargetSpec{Exclude: []string{"db-*", "web-2"}},
			[]string{"web-1-01", "web-1-02", "web-3-01"}},
		// Every label must match: a missing label or another value excludes.
		{"labels", &rollwavev1.TargetSpec{Labels: map[string]string{"role": "api"}},
			[]string{"web-1-01", "web-2-01"}},
		{"labels and cells", &rollwavev1.TargetSpec{Cells: []string{"web-1"}, Labels: map[string]string{"role": "api", "tier": "1"}},
			[]string{"web-1-01"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := geometric(1, 2)
			spec.Target = tc.target
			p := mustCompute(t, spec, fleet)
			var got []string
			for _, ph := range p.Phases {
				got = append(got, ph.Hosts...)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) || p.Targeted != len(tc.want) {
				t.Errorf("targeted %d: %v, want %v", p.Targeted, got, tc.want)
			}
		})
	}
}

// TestBakeSchedule checks bake times: decay, the floor and rounding.
func TestBakeSchedule(t *testing.T) {
	cases := []struct {
		name string
		bake bakeParams
		want []int64
	}{
		// Halving down to the 200ms floor.
		{"floor", bakeParams{firstMs: 1000, decay: 0.5, minMs: 200}, []int64{1000, 500, 250, 200, 200}},
		// decay 1: every phase bakes as long as the first.
		{"constant", bakeParams{firstMs: 1000, decay: 1}, []int64{1000, 1000, 1000}},
		// A floor above first: every phase bakes the floor.
		{"min above first", bakeParams{firstMs: 100, decay: 0.5, minMs: 500}, []int64{500, 500, 500}},
		// Rounded to the nearest ms: 300, 90 (not 90.00000000000001), 27, 8.1→8, 2.43→2, 0.729→1, 0.2187→0.
		{"rounding", bakeParams{firstMs: 1000, decay: 0.3}, []int64{1000, 300, 90, 27, 8, 2, 1, 0}},
		// No bake at all.
		{"zero", bakeParams{decay: 0.5}, []int64{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := bakeSchedule(tc.bake, len(tc.want)); !slices.Equal(got, tc.want) {
				t.Errorf("bakes = %v, want %v", got, tc.want)
			}
		})
	}

	// Through Compute: no bake block means no bake; decay 0 means no decay.
	p := mustCompute(t, geometric(1, 2), fleetOf("a", 7))
	if want := []int64{0, 0, 0}; !slices.Equal(phaseBakes(p), want) {
		t.Errorf("no bake block: bakes = %v, want %v", phaseBakes(p), want)
	}
	spec := geometric(1, 2)
	spec.Bake = &rollwavev1.BakeSpec{FirstMs: 60_000}
	p = mustCompute(t, spec, fleetOf("a", 7))
	if want := []int64{60_000, 60_000, 60_000}; !slices.Equal(phaseBakes(p), want) {
		t.Errorf("decay 0: bakes = %v, want %v", phaseBakes(p), want)
	}
}

// TestApproval checks approval flags; indexes past the last phase are ignored.
func TestApproval(t *testing.T) {
	spec := geometric(1, 2)
	spec.Approval = &rollwavev1.ApprovalSpec{AfterPhases: []int32{2, 0, 99}}
	p := mustCompute(t, spec, fleetOf("a", 15)) // 1, 2, 4, 8
	var got []bool
	for _, ph := range p.Phases {
		got = append(got, ph.ApprovalRequired)
	}
	if want := []bool{true, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("approval_required = %v, want %v", got, want)
	}
}
