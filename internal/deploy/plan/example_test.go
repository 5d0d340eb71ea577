package plan_test

import (
	"fmt"
	"strings"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func ExampleCompute() {
	spec := &rollwavev1.ReleaseSpec{
		Target: &rollwavev1.TargetSpec{Exclude: []string{"db-*"}},
		Phases: &rollwavev1.PhasesSpec{Canary: 1, Growth: "geometric", Factor: 2, PerCellMax: 3, ParallelCellsAfter: 2},
		Bake:   &rollwavev1.BakeSpec{FirstMs: 60_000, Decay: 0.5, MinMs: 20_000},
	}
	fleet := plan.Fleet{
		Cells: []*rollwavev1.Cell{
			{Name: "eu", Risk: 1, Criticality: "medium", Users: 5000},
			{Name: "edge", Risk: 0, Criticality: "low", Users: 100},
		},
	}
	for _, h := range []string{"eu/1", "eu/2", "eu/3", "eu/4", "edge/1", "edge/2", "edge/3", "db-main/1"} {
		cell, _, _ := strings.Cut(h, "/")
		fleet.Hosts = append(fleet.Hosts, plan.HostInfo{ID: h, Cell: cell})
	}
	p, err := plan.Compute(spec, fleet)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cells:", p.CellOrder, "targeted:", p.Targeted)
	for _, ph := range p.Phases {
		fmt.Println(ph.Index, ph.Hosts, ph.Cells, ph.BakeMs)
	}
	// db-main is excluded. Phase 2 may span cells, but only eu is left and
	// per_cell_max holds it to 3 of its target 4.

	// Output:
	// cells: [edge eu] targeted: 7
	// 0 [edge/1] [edge] 60000
	// 1 [edge/2 edge/3] [edge] 30000
	// 2 [eu/1 eu/2 eu/3] [eu] 20000
	// 3 [eu/4] [eu] 20000
}
