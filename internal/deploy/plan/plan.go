package plan

import (
	"errors"
	"fmt"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

var (
	// ErrNoHosts means no alive host matches the release's target.
	ErrNoHosts = errors.New("no hosts match the target")

	// ErrInvalidSpec means a field of the release spec is out of range; the
	// wrapped errors name each field.
	ErrInvalidSpec = errors.New("invalid release spec")

	// ErrInvalidFleet means the fleet view is inconsistent (duplicate or empty
	// host IDs, duplicate cell records).
	ErrInvalidFleet = errors.New("invalid fleet")
)

// HostInfo is one host eligible for planning (alive in gossip).
type HostInfo struct {
	ID     string
	Cell   string
	Labels map[string]string
	// Region is the agent's region; it matters only with
	// phases.parallel_regions_after (empty: NoRegion).
	Region string
}

// Fleet is the planner's view of the fleet.
type Fleet struct {
	// Hosts are the hosts that may be targeted, in any order.
	Hosts []HostInfo
	// Cells are the known cell records, in any order. Cells hosts name but
	// that have no record here sort after all known cells.
	Cells []*rollwavev1.Cell
}

// Plan is the computed rollout.
type Plan struct {
	// Phases in rollout order, each PHASE_STATE_PENDING.
	Phases []*rollwavev1.Phase
	// Targeted is the number of hosts the plan covers.
	Targeted int
	// CellOrder lists the cells with targeted hosts, least risky first.
	CellOrder []string
	// Regions lists the regions that have their own phases after
	// phases.parallel_regions_after, in phase order; empty otherwise.
	Regions []string
}

// Compute plans the rollout of spec over fleet. It reads both and changes
// neither. Errors wrap ErrInvalidSpec, ErrInvalidFleet or ErrNoHosts.
func Compute(spec *rollwavev1.ReleaseSpec, fleet Fleet) (*Plan, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: spec is nil", ErrInvalidSpec)
	}
	p, err := resolveParams(spec)
	if err != nil {
		return nil, err
	}
	records, err := indexCells(fleet)
	if err != nil {
		return nil, err
	}
	hosts, err := selectHosts(p.target, fleet.Hosts)
	if err != nil {
		return nil, err
	}
	cells := orderCells(hosts, records)

	target := p.sizer(len(hosts))
	var phases []phaseHosts
	var regions []regionPhases
	if p.regionsAfter > 0 {
		var left []*cellGroup
		phases, left = assignFrom(cells, target, p.perCellMax, p.parallelAfter, 0, p.regionsAfter)
		regionOf := make(map[string]string, len(hosts))
		for _, h := range hosts {
			regionOf[h.ID] = h.Region
		}
		regions = splitRegions(left, regionOf, target, p.perCellMax, p.parallelAfter, len(phases))
	} else {
		phases = assign(cells, target, p.perCellMax, p.parallelAfter)
	}
	out := &Plan{
		Targeted:  len(hosts),
		CellOrder: make([]string, len(cells)),
	}
	for i, c := range cells {
		out.CellOrder[i] = c.name
	}
	// Ordinals: shared phases 0..len(phases)-1, then each region's own
	// phases numbered on from len(phases) for their sizes and bakes.
	ordinals := len(phases)
	for _, rg := range regions {
		ordinals = max(ordinals, len(phases)+len(rg.phases))
	}
	bakes := bakeSchedule(p.bake, ordinals)
	add := func(ph phaseHosts, ordinal int, region string) {
		out.Phases = append(out.Phases, &rollwavev1.Phase{
			Index:  int32(len(out.Phases)),
			State:  rollwavev1.PhaseState_PHASE_STATE_PENDING,
			Hosts:  ph.hosts,
			Cells:  ph.cells,
			BakeMs: bakes[ordinal],
			// Approvals stop the whole release: only the shared
			// phases ask for them.
			ApprovalRequired: region == "" && p.approvalAfter[ordinal],
			Region:           region,
		})
	}
	for i, ph := range phases {
		add(ph, i, "")
	}
	for _, rg := range regions {
		out.Regions = append(out.Regions, rg.region)
		for i, ph := range rg.phases {
			add(ph, len(phases)+i, rg.region)
		}
	}
	return out, nil
}

// indexCells maps cell records by name, skipping nil entries.
func indexCells(fleet Fleet) (map[string]*rollwavev1.Cell, error) {
	records := make(map[string]*rollwavev1.Cell, len(fleet.Cells))
	for _, c := range fleet.Cells {
		if c == nil {
			continue
		}
		if _, dup := records[c.GetName()]; dup {
			// Two records for one cell would make the order depend on input order.
			return nil, fmt.Errorf("%w: cell %q has more than one record", ErrInvalidFleet, c.GetName())
		}
		records[c.GetName()] = c
	}
	return records, nil
}
