package plan

import (
	"cmp"
	"slices"
	"strings"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// cellGroup is one cell with targeted hosts.
type cellGroup struct {
	name  string
	rec   *rollwavev1.Cell // nil: no record, sorts after every known cell
	hosts []string         // IDs, sorted
}

// criticalityRank orders criticality values; anything else ranks after
// critical, because a value we cannot read is no reason to go early.
var criticalityRank = map[string]int{"low": 0, "medium": 1, "high": 2, "critical": 3}

const unknownCriticality = 4

func rankCriticality(s string) int {
	if r, ok := criticalityRank[strings.ToLower(s)]; ok {
		return r
	}
	return unknownCriticality
}

// orderCells groups hosts by cell and orders the cells least risky first
// (see the package comment). The result does not depend on input order.
func orderCells(hosts []HostInfo, records map[string]*rollwavev1.Cell) []*cellGroup {
	byName := map[string]*cellGroup{}
	var cells []*cellGroup
	for _, h := range hosts {
		g := byName[h.Cell]
		if g == nil {
			g = &cellGroup{name: h.Cell, rec: records[h.Cell]}
			byName[h.Cell] = g
			cells = append(cells, g)
		}
		g.hosts = append(g.hosts, h.ID)
	}
	for _, g := range cells {
		slices.Sort(g.hosts)
	}
	slices.SortFunc(cells, compareCells)
	return cells
}

func compareCells(a, b *cellGroup) int {
	switch {
	case a.rec != nil && b.rec == nil:
		return -1
	case a.rec == nil && b.rec != nil:
		return 1
	case a.rec == nil && b.rec == nil:
		return strings.Compare(a.name, b.name)
	}
	return cmp.Or(
		cmp.Compare(a.rec.GetRisk(), b.rec.GetRisk()),
		cmp.Compare(rankCriticality(a.rec.GetCriticality()), rankCriticality(b.rec.GetCriticality())),
		cmp.Compare(a.rec.GetUsers(), b.rec.GetUsers()),
		cmp.Compare(len(a.hosts), len(b.hosts)),
		strings.Compare(a.name, b.name),
	)
}
