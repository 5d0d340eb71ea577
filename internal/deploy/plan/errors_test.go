package plan

import (
	"errors"
	"math"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestComputeErrors checks that bad specs and fleets are rejected with an
// error that wraps the right sentinel and names the field and value.
func TestComputeErrors(t *testing.T) {
	phases := func(edit func(*rollwavev1.PhasesSpec)) *rollwavev1.ReleaseSpec {
		s := geometric(1, 2)
		edit(s.Phases)
		return s
	}
	bake := func(b *rollwavev1.BakeSpec) *rollwavev1.ReleaseSpec {
		s := geometric(1, 2)
		s.Bake = b
		return s
	}
	target := func(tg *rollwavev1.TargetSpec) *rollwavev1.ReleaseSpec {
		s := geometric(1, 2)
		s.Target = tg
		return s
	}
	ok := fleetOf("web-1", 3)
	cases := []struct {
		name  string
		spec  *rollwavev1.ReleaseSpec
		fleet Fleet
		is    error
		want  []string // substrings of the message
	}{
		// No spec at all.
		{"nil spec", nil, ok, ErrInvalidSpec, []string{"spec is nil"}},
		// Geometric growth needs a factor above 1.
		{"factor 1", geometric(1, 1), ok, ErrInvalidSpec,
			[]string{"phases.factor must be greater than 1 for geometric growth, got 1"}},
		{"factor below 1", geometric(1, 0.5), ok, ErrInvalidSpec, []string{"phases.factor", "got 0.5"}},
		{"factor NaN", geometric(1, math.NaN()), ok, ErrInvalidSpec, []string{"phases.factor", "got NaN"}},
		{"factor Inf", geometric(1, math.Inf(1)), ok, ErrInvalidSpec, []string{"phases.factor", "got +Inf"}},
		// Linear growth needs a step of at least 1.
		{"step 0", linear(1, 0), ok, ErrInvalidSpec, []string{"phases.step must be at least 1 for linear growth, got 0"}},
		{"unknown growth", phases(func(p *rollwavev1.PhasesSpec) { p.Growth = "exponential" }), ok, ErrInvalidSpec,
			[]string{"phases.growth", `"exponential"`}},
		{"negative canary", phases(func(p *rollwavev1.PhasesSpec) { p.Canary = -1 }), ok, ErrInvalidSpec,
			[]string{"phases.canary", "got -1"}},
		{"negative per_cell_max", phases(func(p *rollwavev1.PhasesSpec) { p.PerCellMax = -2 }), ok, ErrInvalidSpec,
			[]string{"phases.per_cell_max", "got -2"}},
		{"negative parallel_cells_after", phases(func(p *rollwavev1.PhasesSpec) { p.ParallelCellsAfter = -1 }), ok, ErrInvalidSpec,
			[]string{"phases.parallel_cells_after", "got -1"}},
		{"negative max_size", phases(func(p *rollwavev1.PhasesSpec) { p.MaxSize = count(-1) }), ok, ErrInvalidSpec,
			[]string{"phases.max_size", "got -1"}},
		{"max_size over 100%", phases(func(p *rollwavev1.PhasesSpec) { p.MaxSize = percent(150) }), ok, ErrInvalidSpec,
			[]string{"phases.max_size must be at most 100%, got 150%"}},
		{"fractional max_size count", phases(func(p *rollwavev1.PhasesSpec) { p.MaxSize = count(2.5) }), ok, ErrInvalidSpec,
			[]string{"phases.max_size must be a whole number", "got 2.5"}},
		// Globs are checked before any host is looked at.
		{"bad cells glob", target(&rollwavev1.TargetSpec{Cells: []string{"*", "web-["}}), ok, ErrInvalidSpec,
			[]string{`target.cells[1]: bad glob "web-["`}},
		{"bad exclude glob", target(&rollwavev1.TargetSpec{Exclude: []string{"[z"}}), ok, ErrInvalidSpec,
			[]string{`target.exclude[0]: bad glob "[z"`}},
		{"decay above 1", bake(&rollwavev1.BakeSpec{FirstMs: 1, Decay: 1.5}), ok, ErrInvalidSpec,
			[]string{"bake.decay must be in (0, 1], got 1.5"}},
		{"negative decay", bake(&rollwavev1.BakeSpec{Decay: -0.1}), ok, ErrInvalidSpec, []string{"bake.decay", "got -0.1"}},
		{"negative first", bake(&rollwavev1.BakeSpec{FirstMs: -1}), ok, ErrInvalidSpec, []string{"bake.first", "got -1ms"}},
		{"negative min", bake(&rollwavev1.BakeSpec{MinMs: -5}), ok, ErrInvalidSpec, []string{"bake.min", "got -5ms"}},
		{"negative approval index", func() *rollwavev1.ReleaseSpec {
			s := geometric(1, 2)
			s.Approval = &rollwavev1.ApprovalSpec{AfterPhases: []int32{0, -1}}
			return s
		}(), ok, ErrInvalidSpec, []string{"approval.after_phases[1]", "got -1"}},
		// Every bad field is reported, not just the first.
		{"several fields", phases(func(p *rollwavev1.PhasesSpec) { p.Factor = 1; p.PerCellMax = -1 }), ok, ErrInvalidSpec,
			[]string{"phases.factor", "phases.per_cell_max"}},
		// Nothing matches: the error names the target so the operator can fix it.
		{"no hosts", target(&rollwavev1.TargetSpec{Cells: []string{"api-*"}, Exclude: []string{"db-*"}}), ok, ErrNoHosts,
			[]string{`"api-*"`, `"db-*"`, "3 alive hosts"}},
		{"empty fleet", geometric(1, 2), Fleet{}, ErrNoHosts, []string{"0 alive hosts"}},
		{"labels match nothing", target(&rollwavev1.TargetSpec{Labels: map[string]string{"role": "api"}}), ok, ErrNoHosts,
			[]string{"role:api"}},
		// Inconsistent fleets would break "every host exactly once".
		{"duplicate host", geometric(1, 2), Fleet{Hosts: append(hostsIn("a", 2), HostInfo{ID: "a-01", Cell: "b"})},
			ErrInvalidFleet, []string{`host "a-01" appears more than once`}},
		{"empty host ID", geometric(1, 2), Fleet{Hosts: []HostInfo{{Cell: "a"}}}, ErrInvalidFleet, []string{"empty ID"}},
		{"duplicate cell record", geometric(1, 2),
			Fleet{Hosts: hostsIn("a", 1), Cells: []*rollwavev1.Cell{cellRec("a", 0, "low", 0), cellRec("a", 1, "low", 0)}},
			ErrInvalidFleet, []string{`cell "a" has more than one record`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute(tc.spec, tc.fleet)
			if err == nil {
				t.Fatalf("Compute succeeded with %d phases, want an error", len(p.Phases))
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %q", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
