package raftfsm

import (
	"slices"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applyUpsertHosts registers hosts or merges news about known ones: set
// fields overwrite, labels are replaced when any are sent, slot facts are
// replaced per app, last contact only moves forward, first seen never changes.
func applyUpsertHosts(s *view, _ uint64, cmd *v1.UpsertHostsCommand) error {
	for i, h := range cmd.GetHosts() {
		if h.GetId() == "" {
			return reject(ErrInvalid, "hosts[%d]: id is required", i)
		}
	}
	for _, in := range cmd.GetHosts() {
		cur := s.host(in.GetId())
		if cur == nil {
			h := clone(in)
			if h.FirstSeenUnixNano == 0 {
				h.FirstSeenUnixNano = cmd.GetTimeUnixNano()
			}
			s.put(tHost, h)
			continue
		}
		cur = clone(cur)
		mergeHost(cur, in)
		s.put(tHost, cur)
	}
	return nil
}

func mergeHost(cur, in *v1.Host) {
	setIf(&cur.Cell, in.GetCell())
	setIf(&cur.Region, in.GetRegion())
	setIf(&cur.AgentVersion, in.GetAgentVersion())
	setIf(&cur.Address, in.GetAddress())
	cur.LastContactUnixNano = max(cur.GetLastContactUnixNano(), in.GetLastContactUnixNano())
	if len(in.GetLabels()) > 0 {
		cur.Labels = clone(in).Labels
	}
	for _, f := range in.GetApps() {
		f = clone(f)
		i := slices.IndexFunc(cur.Apps, func(c *v1.SlotFacts) bool { return c.GetApp() == f.GetApp() })
		if i >= 0 {
			cur.Apps[i] = f
		} else {
			cur.Apps = append(cur.Apps, f)
		}
	}
	// Keep slot facts in a canonical order so state compares byte-for-byte.
	slices.SortStableFunc(cur.Apps, func(a, b *v1.SlotFacts) int {
		switch {
		case a.GetApp() < b.GetApp():
			return -1
		case a.GetApp() > b.GetApp():
			return 1
		}
		return 0
	})
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// applyDeleteHost forgets a host. Its assignment history is kept so later
// generations for a re-registered host still increase.
func applyDeleteHost(s *view, _ uint64, cmd *v1.DeleteHostCommand) error {
	id := cmd.GetId()
	h := s.host(id)
	if h == nil {
		return reject(ErrNotFound, "host %q does not exist", id)
	}
	for _, cur := range all[*v1.Assignment](s, tCur, "id", strKey(id)) {
		if !AssignmentEnded(cur.GetState()) {
			return reject(ErrConflict, "host %q is still running release %q for app %q (generation %d, %s); wait for it to end or abort the release first",
				id, cur.GetReleaseId(), cur.GetApp(), cur.GetGeneration(), stateName(cur.GetState()))
		}
	}
	s.del(tHost, h)
	return nil
}

var criticalities = []string{"low", "medium", "high", "critical"}

func applySetCell(s *view, _ uint64, cmd *v1.SetCellCommand) error {
	c := cmd.GetCell()
	switch {
	case c == nil:
		return reject(ErrInvalid, "cell is required")
	case c.GetName() == "":
		return reject(ErrInvalid, "cell name is required")
	case !slices.Contains(criticalities, c.GetCriticality()):
		return reject(ErrInvalid, "cell %q: criticality %q must be one of low, medium, high, critical", c.GetName(), c.GetCriticality())
	case c.GetRisk() < 0:
		return reject(ErrInvalid, "cell %q: risk %d must be >= 0", c.GetName(), c.GetRisk())
	case c.GetUsers() < 0:
		return reject(ErrInvalid, "cell %q: users %d must be >= 0", c.GetName(), c.GetUsers())
	}
	c = clone(c)
	c.UpdatedUnixNano = cmd.GetTimeUnixNano()
	s.put(tCell, c)
	return nil
}

// applyDeleteCell refuses while hosts still name the cell: the planner would
// otherwise see hosts whose cell has no risk or criticality.
func applyDeleteCell(s *view, _ uint64, cmd *v1.DeleteCellCommand) error {
	name := cmd.GetName()
	c := s.cell(name)
	if c == nil {
		return reject(ErrNotFound, "cell %q does not exist", name)
	}
	n := 0
	each(s, tHost, "id", nil, func(h *v1.Host) bool {
		if h.GetCell() == name {
			n++
		}
		return true
	})
	if n > 0 {
		return reject(ErrConflict, "cell %q still has %d host(s); move or delete them first", name, n)
	}
	s.del(tCell, c)
	return nil
}
