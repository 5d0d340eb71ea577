package plan

import "slices"

// phaseHosts is one phase's share of the fleet, before it becomes a proto.
type phaseHosts struct {
	hosts []string // assignment order: cells in cell order, IDs within a cell
	cells []string // cells touched, in cell order
}

// assign deals the hosts of cells (already ordered) into phases. target(n)
// is phase n's target size; perCellMax (0 = unlimited) caps what one phase
// takes from one cell; phases with index < parallelAfter, or all phases when
// parallelAfter is 0, draw from one cell only.
//
// Every phase takes at least one host (targets are ≥ 1 and the first
// unfinished cell has a host left), so there are at most as many phases as
// hosts.
func assign(cells []*cellGroup, target func(n int) int, perCellMax, parallelAfter int) []phaseHosts {
	phases, _ := assignFrom(cells, target, perCellMax, parallelAfter, 0, 0)
	return phases
}

// assignFrom is assign starting at phase ordinal from (phase n's target is
// target(n), and n decides single-cell or spanning) and stopping after
// limit phases when limit > 0. It also returns the hosts it left, as cell
// groups in the same order (cells with no host left are dropped).
func assignFrom(cells []*cellGroup, target func(n int) int, perCellMax, parallelAfter, from, limit int) ([]phaseHosts, []*cellGroup) {
	next := make([]int, len(cells)) // per cell: index of its first unassigned host
	first := 0                      // first cell with unassigned hosts
	var phases []phaseHosts
	for n := from; first < len(cells) && (limit <= 0 || n < from+limit); n++ {
		need := target(n)
		single := parallelAfter == 0 || n < parallelAfter
		var ph phaseHosts
		for c := first; c < len(cells) && need > 0; c++ {
			left := cells[c].hosts[next[c]:]
			take := min(need, len(left))
			if perCellMax > 0 {
				take = min(take, perCellMax)
			}
			if take > 0 {
				ph.hosts = append(ph.hosts, left[:take]...)
				ph.cells = append(ph.cells, cells[c].name)
				next[c] += take
				need -= take
			}
			if single {
				// Never spill into the next cell: a short cell makes a short phase.
				break
			}
		}
		for first < len(cells) && next[first] == len(cells[first].hosts) {
			first++
		}
		phases = append(phases, ph)
	}
	var left []*cellGroup
	for c := first; c < len(cells); c++ {
		if rest := cells[c].hosts[next[c]:]; len(rest) > 0 {
			left = append(left, &cellGroup{name: cells[c].name, rec: cells[c].rec, hosts: rest})
		}
	}
	return phases, left
}

// NoRegion names the region of hosts whose agent reports none, in the
// phases after phases.parallel_regions_after.
const NoRegion = "(none)"

// regionPhases is one region's own phases.
type regionPhases struct {
	region string
	phases []phaseHosts
}

// splitRegions plans the hosts left after the shared phases per region:
// each region (in name order) gets its own phases over its own hosts,
// cells in the same order, numbered on from ordinal from, so that sizes,
// the cell rules and bakes continue where the shared phases stopped.
func splitRegions(left []*cellGroup, regionOf map[string]string, target func(n int) int, perCellMax, parallelAfter, from int) []regionPhases {
	byRegion := map[string][]*cellGroup{}
	var names []string
	for _, c := range left {
		groups := map[string]*cellGroup{}
		var order []string
		for _, h := range c.hosts {
			rg := regionOf[h]
			if rg == "" {
				rg = NoRegion
			}
			g := groups[rg]
			if g == nil {
				g = &cellGroup{name: c.name, rec: c.rec}
				groups[rg] = g
				order = append(order, rg)
			}
			g.hosts = append(g.hosts, h)
		}
		for _, rg := range order {
			if _, ok := byRegion[rg]; !ok {
				names = append(names, rg)
			}
			byRegion[rg] = append(byRegion[rg], groups[rg])
		}
	}
	slices.Sort(names)
	out := make([]regionPhases, 0, len(names))
	for _, rg := range names {
		phases, _ := assignFrom(byRegion[rg], target, perCellMax, parallelAfter, from, 0)
		out = append(out, regionPhases{region: rg, phases: phases})
	}
	return out
}
