package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestGateURLPrefixes: with gate_url_prefixes set, a release whose gate
// points elsewhere is refused at submission as invalid, naming the gate's
// field; without prefixes any URL the spec accepts is allowed.
func TestGateURLPrefixes(t *testing.T) {
	prefixes, err := spec.ParseArtifactPrefixes([]string{"http://prometheus.internal:9090", "https://slo.internal/rollwave/"})
	if err != nil {
		t.Fatal(err)
	}
	sp := func(gates ...*rollwavev1.MetricGate) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Gates: &rollwavev1.GatesSpec{MetricGates: gates}}
	}
	ok := sp(&rollwavev1.MetricGate{Kind: "prometheus", Address: "http://prometheus.internal:9090"},
		&rollwavev1.MetricGate{Kind: "http", Url: "https://slo.internal/rollwave/verdict"})
	bad := sp(&rollwavev1.MetricGate{Kind: "prometheus", Address: "http://prometheus.internal:9090"},
		&rollwavev1.MetricGate{Kind: "http", Url: "http://169.254.169.254/latest/meta-data/"})

	s := &Server{cfg: Config{GateURLPrefixes: prefixes}}
	if err := s.checkGateURLs(ok); err != nil {
		t.Fatalf("allowed gates refused: %v", err)
	}
	err = s.checkGateURLs(bad)
	if !errors.Is(err, raftfsm.ErrInvalid) || !strings.Contains(err.Error(), "release.gates.gate[1].url") ||
		!strings.Contains(err.Error(), "gate_url_prefixes") {
		t.Fatalf("gate outside the prefixes: %v", err)
	}
	if err := (&Server{}).checkGateURLs(bad); err != nil {
		t.Fatalf("no prefixes configured: %v", err)
	}
}
