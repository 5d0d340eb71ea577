package plan

import (
	"fmt"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// BenchmarkCompute10k plans a 10,000-host fleet in 50 cells with the
// DESIGN.md spec shape (25% cap, 10 per cell, cells in parallel from phase 3).
func BenchmarkCompute10k(b *testing.B) {
	const hosts, cells = 10_000, 50
	var fleet Fleet
	for c := range cells {
		fleet.Cells = append(fleet.Cells, cellRec(fmt.Sprintf("cell-%02d", c), int32(c%5), propCrit[c%4], int64(c*100)))
	}
	for h := range hosts {
		// Interleave cells so the planner has real grouping and sorting to do.
		fleet.Hosts = append(fleet.Hosts, HostInfo{
			ID:     fmt.Sprintf("host-%05d", (h*7919)%hosts),
			Cell:   fmt.Sprintf("cell-%02d", h%cells),
			Labels: map[string]string{"role": "api"},
		})
	}
	spec := &rollwavev1.ReleaseSpec{
		Target: &rollwavev1.TargetSpec{Cells: []string{"cell-*"}, Exclude: []string{"db-*"}, Labels: map[string]string{"role": "api"}},
		Phases: &rollwavev1.PhasesSpec{
			Canary: 1, Growth: "geometric", Factor: 2,
			MaxSize: percent(25), PerCellMax: 10, ParallelCellsAfter: 3,
		},
		Bake: &rollwavev1.BakeSpec{FirstMs: 1_800_000, Decay: 0.5, MinMs: 300_000},
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := Compute(spec, fleet)
		if err != nil || p.Targeted != hosts {
			b.Fatalf("Compute: %v (targeted %d)", err, p.Targeted)
		}
	}
}
