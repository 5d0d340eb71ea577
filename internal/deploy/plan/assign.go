package plan

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
	next := make([]int, len(cells)) // per cell: index of its first unassigned host
	first := 0                      // first cell with unassigned hosts
	var phases []phaseHosts
	for n := 0; first < len(cells); n++ {
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
	return phases
}
