package plan

import (
	"fmt"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// hostsIn returns n hosts in cell, named "<cell>-01", "<cell>-02", ...
func hostsIn(cell string, n int) []HostInfo {
	out := make([]HostInfo, n)
	for i := range out {
		out[i] = HostInfo{ID: fmt.Sprintf("%s-%02d", cell, i+1), Cell: cell}
	}
	return out
}

// fleetOf builds a fleet from (cell, host count) pairs, with no cell records.
func fleetOf(pairs ...any) Fleet {
	var f Fleet
	for i := 0; i < len(pairs); i += 2 {
		f.Hosts = append(f.Hosts, hostsIn(pairs[i].(string), pairs[i+1].(int))...)
	}
	return f
}

func cellRec(name string, risk int32, crit string, users int64) *rollwavev1.Cell {
	return &rollwavev1.Cell{Name: name, Risk: risk, Criticality: crit, Users: users}
}

func geometric(canary int32, factor float64) *rollwavev1.ReleaseSpec {
	return &rollwavev1.ReleaseSpec{Phases: &rollwavev1.PhasesSpec{Canary: canary, Growth: "geometric", Factor: factor}}
}

func linear(canary, step int32) *rollwavev1.ReleaseSpec {
	return &rollwavev1.ReleaseSpec{Phases: &rollwavev1.PhasesSpec{Canary: canary, Growth: "linear", Step: step}}
}

func count(n float64) *rollwavev1.Quantity   { return &rollwavev1.Quantity{Value: n} }
func percent(p float64) *rollwavev1.Quantity { return &rollwavev1.Quantity{Value: p, Percent: true} }

func mustCompute(t *testing.T, spec *rollwavev1.ReleaseSpec, fleet Fleet) *Plan {
	t.Helper()
	p, err := Compute(spec, fleet)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return p
}

func phaseSizes(p *Plan) []int {
	out := make([]int, len(p.Phases))
	for i, ph := range p.Phases {
		out[i] = len(ph.Hosts)
	}
	return out
}

func phaseCells(p *Plan) [][]string {
	out := make([][]string, len(p.Phases))
	for i, ph := range p.Phases {
		out[i] = ph.Cells
	}
	return out
}

func phaseBakes(p *Plan) []int64 {
	out := make([]int64, len(p.Phases))
	for i, ph := range p.Phases {
		out[i] = ph.BakeMs
	}
	return out
}
