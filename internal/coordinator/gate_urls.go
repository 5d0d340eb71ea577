package coordinator

import (
	"fmt"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// allowGateURL returns why the leader may not send a gate reading to raw
// (gate_url_prefixes), or nil. No prefixes configured allows any URL the
// spec validation accepts.
func (s *Server) allowGateURL(raw string) error {
	if len(s.cfg.GateURLPrefixes) == 0 {
		return nil
	}
	if err := s.cfg.GateURLPrefixes.Check(raw); err != nil {
		return fmt.Errorf("URL %q is not under the coordinator's gate_url_prefixes", spec.RedactURL(raw))
	}
	return nil
}

// checkGateURLs refuses, at submission, a release whose external gates
// point where this coordinator's gate_url_prefixes do not allow (the
// leader checks again before every reading).
func (s *Server) checkGateURLs(sp *rollwavev1.ReleaseSpec) error {
	for i, g := range sp.GetGates().GetMetricGates() {
		u, field := g.GetAddress(), "address"
		if g.GetKind() == "http" {
			u, field = g.GetUrl(), "url"
		}
		if err := s.allowGateURL(u); err != nil {
			return errorf(raftfsm.ErrInvalid, "release.gates.gate[%d].%s: %v", i, field, err)
		}
	}
	return nil
}
