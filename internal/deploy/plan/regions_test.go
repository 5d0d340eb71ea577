package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// inRegion sets the region of every host in cells.
func inRegion(f Fleet, region string, cells ...string) Fleet {
	for i := range f.Hosts {
		if slices.Contains(cells, f.Hosts[i].Cell) {
			f.Hosts[i].Region = region
		}
	}
	return f
}

// TestComputeParallelRegions: the first N phases run over the fleet as
// without regions; the hosts left are planned per region, each region's
// phases numbered on from N for their sizes and bakes, every region's
// phases contiguous and in region name order.
func TestComputeParallelRegions(t *testing.T) {
	spec := geometric(1, 2)
	spec.Phases.ParallelRegionsAfter = 2
	spec.Bake = &rollwavev1.BakeSpec{FirstMs: 8000, Decay: 0.5, MinMs: 1000}
	spec.Approval = &rollwavev1.ApprovalSpec{AfterPhases: []int32{0, 2}}
	// Cells ordered a-eu, b-eu, c-us (no records: by name).
	f := fleetOf("a-eu", 3, "b-eu", 4, "c-us", 6)
	f = inRegion(f, "eu", "a-eu", "b-eu")
	f = inRegion(f, "us", "c-us")
	p := mustCompute(t, spec, f)

	// Shared: phase 0 = 1 host, phase 1 = 2 hosts (both in a-eu, single
	// cell). Then eu has b-eu's 4 hosts; us has c-us's 6. Each continues
	// at ordinal 2 (target 4), ordinal 3 (target 8).
	if want := []int{1, 2, 4, 4, 2}; !slices.Equal(phaseSizes(p), want) {
		t.Errorf("sizes = %v, want %v", phaseSizes(p), want)
	}
	wantRegions := []string{"", "", "eu", "us", "us"}
	for i, ph := range p.Phases {
		if ph.Region != wantRegions[i] {
			t.Errorf("phase %d region = %q, want %q", i, ph.Region, wantRegions[i])
		}
		if ph.Index != int32(i) {
			t.Errorf("phase %d index = %d", i, ph.Index)
		}
	}
	if want := []string{"eu", "us"}; !slices.Equal(p.Regions, want) {
		t.Errorf("Regions = %v, want %v", p.Regions, want)
	}
	// Bakes by ordinal: 8s, 4s, then 2s at ordinal 2 for both regions,
	// 1s at ordinal 3 (the floor).
	if want := []int64{8000, 4000, 2000, 2000, 1000}; !slices.Equal(phaseBakes(p), want) {
		t.Errorf("bakes = %v, want %v", phaseBakes(p), want)
	}
	// Approval after phase 0 is kept; ordinal 2 is a regional phase, where
	// an approval would stop every region: not asked for.
	for i, ph := range p.Phases {
		if ph.ApprovalRequired != (i == 0) {
			t.Errorf("phase %d approval_required = %v", i, ph.ApprovalRequired)
		}
	}
	// Every host exactly once.
	var all []string
	for _, ph := range p.Phases {
		all = append(all, ph.Hosts...)
	}
	slices.Sort(all)
	if len(all) != 13 || len(slices.Compact(all)) != 13 {
		t.Errorf("hosts = %v, want 13 distinct", all)
	}
}

// TestComputeParallelRegionsSplitsACell: a cell whose hosts are in two
// regions gives each region its share; hosts without a region form
// NoRegion.
func TestComputeParallelRegionsSplitsACell(t *testing.T) {
	spec := linear(1, 1)
	spec.Phases.ParallelRegionsAfter = 1
	f := fleetOf("c", 5)
	f.Hosts[1].Region = "west" // c-02
	f.Hosts[3].Region = "west" // c-04
	f.Hosts[4].Region = "east" // c-05; c-01 (canary) and c-03 have none
	p := mustCompute(t, spec, f)
	got := map[string][]string{}
	for _, ph := range p.Phases[1:] {
		got[ph.Region] = append(got[ph.Region], ph.Hosts...)
	}
	want := map[string][]string{"east": {"c-05"}, "west": {"c-02", "c-04"}, NoRegion: {"c-03"}}
	for rg, hosts := range want {
		if !slices.Equal(got[rg], hosts) {
			t.Errorf("region %q hosts = %v, want %v", rg, got[rg], hosts)
		}
	}
	if w := []string{NoRegion, "east", "west"}; !slices.Equal(p.Regions, w) {
		t.Errorf("Regions = %v, want %v", p.Regions, w)
	}
}

// TestComputeParallelRegionsNoneLeft: when the shared phases take every
// host there is nothing to split.
func TestComputeParallelRegionsNoneLeft(t *testing.T) {
	spec := geometric(1, 2)
	spec.Phases.ParallelRegionsAfter = 5
	p := mustCompute(t, spec, inRegion(fleetOf("a", 3), "eu", "a"))
	if len(p.Regions) != 0 {
		t.Errorf("Regions = %v, want none", p.Regions)
	}
	for _, ph := range p.Phases {
		if ph.Region != "" {
			t.Errorf("phase %d has region %q", ph.Index, ph.Region)
		}
	}
}

func TestComputeParallelRegionsNegative(t *testing.T) {
	spec := geometric(1, 2)
	spec.Phases.ParallelRegionsAfter = -1
	_, err := Compute(spec, fleetOf("a", 3))
	if !errors.Is(err, ErrInvalidSpec) || err == nil || !strings.Contains(err.Error(), "phases.parallel_regions_after") {
		t.Fatalf("err = %v, want ErrInvalidSpec naming phases.parallel_regions_after", err)
	}
}
