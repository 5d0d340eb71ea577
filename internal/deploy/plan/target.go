package plan

import (
	"fmt"
	"path"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// selectHosts returns the hosts the target selects, in input order. It also
// rejects a fleet whose host IDs are empty or repeated, since every host must
// land in exactly one phase. Globs were validated by resolveParams.
func selectHosts(t *rollwavev1.TargetSpec, hosts []HostInfo) ([]HostInfo, error) {
	seen := make(map[string]struct{}, len(hosts))
	var out []HostInfo
	for _, h := range hosts {
		if h.ID == "" {
			return nil, fmt.Errorf("%w: a host in cell %q has an empty ID", ErrInvalidFleet, h.Cell)
		}
		if _, dup := seen[h.ID]; dup {
			return nil, fmt.Errorf("%w: host %q appears more than once", ErrInvalidFleet, h.ID)
		}
		seen[h.ID] = struct{}{}
		if targeted(t, h) {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s matched none of %d alive hosts; check the target block and that the agents have joined",
			ErrNoHosts, describeTarget(t), len(hosts))
	}
	return out, nil
}

// describeTarget renders a target for error messages.
func describeTarget(t *rollwavev1.TargetSpec) string {
	cells := "all cells"
	if len(t.GetCells()) > 0 {
		cells = fmt.Sprintf("cells %q", t.GetCells())
	}
	s := "target " + cells
	if len(t.GetExclude()) > 0 {
		s += fmt.Sprintf(", exclude %q", t.GetExclude())
	}
	if len(t.GetLabels()) > 0 {
		s += fmt.Sprintf(", labels %v", t.GetLabels()) // fmt sorts map keys
	}
	return s
}

func targeted(t *rollwavev1.TargetSpec, h HostInfo) bool {
	if cells := t.GetCells(); len(cells) > 0 && !matchAny(cells, h.Cell) {
		return false
	}
	if matchAny(t.GetExclude(), h.Cell) {
		return false
	}
	for k, v := range t.GetLabels() {
		if got, ok := h.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		// The only error path.Match returns is ErrBadPattern, rejected earlier.
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Targets reports whether the target t selects host h (the same rule a
// plan uses). Globs in t are assumed valid (checked when the spec was
// parsed); a bad one matches nothing.
func Targets(t *rollwavev1.TargetSpec, h HostInfo) bool { return targeted(t, h) }
