package plan

import (
	"errors"
	"fmt"
	"math"
	"path"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Defaults for zero (unset) spec fields; see the package comment.
const (
	defaultCanary = 1
	defaultFactor = 2.0
	defaultDecay  = 1.0
)

// params is a validated release spec with defaults applied: everything the
// planner reads from the spec.
type params struct {
	target        *rollwavev1.TargetSpec // may be nil: every host
	canary        int
	geometric     bool
	factor        float64 // geometric only, > 1
	step          int     // linear only, ≥ 1
	maxSize       *rollwavev1.Quantity
	perCellMax    int // 0 = unlimited
	parallelAfter int // 0 = never
	regionsAfter  int // 0 = never
	bake          bakeParams
	approvalAfter map[int]bool
}

type bakeParams struct {
	firstMs, minMs int64
	decay          float64
}

// resolveParams validates spec and applies defaults. It reports every bad
// field at once, each named as the operator wrote it.
func resolveParams(spec *rollwavev1.ReleaseSpec) (*params, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	p := &params{target: spec.GetTarget(), approvalAfter: map[int]bool{}}
	checkGlobs := func(field string, globs []string) {
		for i, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				bad("%s[%d]: bad glob %q: %v", field, i, g, err)
			}
		}
	}
	checkGlobs("target.cells", p.target.GetCells())
	checkGlobs("target.exclude", p.target.GetExclude())

	ph := spec.GetPhases()
	switch c := ph.GetCanary(); {
	case c < 0:
		bad("phases.canary must not be negative, got %d", c)
	case c == 0:
		p.canary = defaultCanary
	default:
		p.canary = int(c)
	}
	switch g := ph.GetGrowth(); g {
	case "", "geometric":
		p.geometric = true
		switch f := ph.GetFactor(); {
		case f == 0:
			p.factor = defaultFactor
		case !(f > 1) || math.IsInf(f, 1): // !(f > 1) also catches NaN
			bad("phases.factor must be greater than 1 for geometric growth, got %g", f)
		default:
			p.factor = f
		}
	case "linear":
		if s := ph.GetStep(); s < 1 {
			bad("phases.step must be at least 1 for linear growth, got %d", s)
		} else {
			p.step = int(s)
		}
	default:
		bad("phases.growth must be \"geometric\" or \"linear\", got %q", g)
	}
	if err := checkQuantity("phases.max_size", ph.GetMaxSize()); err != nil {
		errs = append(errs, err)
	}
	p.maxSize = ph.GetMaxSize()
	if v := ph.GetPerCellMax(); v < 0 {
		bad("phases.per_cell_max must not be negative (0 means unlimited), got %d", v)
	} else {
		p.perCellMax = int(v)
	}
	if v := ph.GetParallelCellsAfter(); v < 0 {
		bad("phases.parallel_cells_after must not be negative (0 means never), got %d", v)
	} else {
		p.parallelAfter = int(v)
	}
	if v := ph.GetParallelRegionsAfter(); v < 0 {
		bad("phases.parallel_regions_after must not be negative (0 means never), got %d", v)
	} else {
		p.regionsAfter = int(v)
	}

	b := spec.GetBake()
	p.bake = bakeParams{firstMs: b.GetFirstMs(), minMs: b.GetMinMs(), decay: b.GetDecay()}
	if p.bake.firstMs < 0 {
		bad("bake.first must not be negative, got %dms", p.bake.firstMs)
	}
	if p.bake.minMs < 0 {
		bad("bake.min must not be negative, got %dms", p.bake.minMs)
	}
	switch d := p.bake.decay; {
	case d == 0:
		p.bake.decay = defaultDecay
	case !(d > 0 && d <= 1):
		bad("bake.decay must be in (0, 1], got %g", d)
	}

	for i, a := range spec.GetApproval().GetAfterPhases() {
		if a < 0 {
			bad("approval.after_phases[%d] must not be negative, got %d", i, a)
			continue
		}
		p.approvalAfter[int(a)] = true
	}

	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, errors.Join(errs...))
	}
	return p, nil
}

// checkQuantity validates a count-or-percent cap; nil or 0 means unlimited.
func checkQuantity(field string, q *rollwavev1.Quantity) error {
	v := q.GetValue()
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
		return fmt.Errorf("%s must be a non-negative count or percentage, got %g", field, v)
	case q.GetPercent() && v > 100:
		return fmt.Errorf("%s must be at most 100%%, got %g%%", field, v)
	case !q.GetPercent() && v != math.Trunc(v):
		return fmt.Errorf("%s must be a whole number of hosts, got %g", field, v)
	}
	return nil
}
