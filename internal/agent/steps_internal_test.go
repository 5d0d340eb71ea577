package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func stats(n, errs uint64, took time.Duration) health.RequestStats {
	s := health.RequestStats{Requests: n, Errors: errs}
	for range n {
		s.Latency.Add(took)
	}
	return s
}

// The step gate compares the new slot with the old one on the same host.
func TestStepGateJudge(t *testing.T) {
	t.Parallel()
	spec := func(gates *rollwavev1.GatesSpec) *rollwavev1.ReleaseSpec {
		return &rollwavev1.ReleaseSpec{Gates: gates}
	}
	cases := []struct {
		name     string
		gates    *rollwavev1.GatesSpec
		new, old health.RequestStats
		want     health.Verdict
		evidence string
	}{
		// Too few requests on the new slot: never a pass.
		{"too few", &rollwavev1.GatesSpec{MinRequests: 50}, stats(10, 0, time.Millisecond), stats(990, 0, time.Millisecond), health.Inconclusive, "too few requests"},
		// Same error rate: pass.
		{"same", &rollwavev1.GatesSpec{MinRequests: 50}, stats(100, 1, time.Millisecond), stats(900, 9, time.Millisecond), health.Pass, "new 1/100 errors, old 9/900"},
		// Many more errors on the new slot: fail, with the p-value.
		{"worse", &rollwavev1.GatesSpec{MinRequests: 50}, stats(100, 30, time.Millisecond), stats(900, 0, time.Millisecond), health.Fail, "p="},
		// Equal rates but above max_error_rate: fail.
		{"above max", &rollwavev1.GatesSpec{MinRequests: 50, MaxErrorRate: 0.01}, stats(100, 5, time.Millisecond), stats(900, 45, time.Millisecond), health.Fail, "above max_error_rate"},
		// Much slower with a latency limit: fail.
		{"slow", &rollwavev1.GatesSpec{MinRequests: 50, MaxLatencyP99Ms: 100}, stats(100, 0, 300*time.Millisecond), stats(900, 0, 5*time.Millisecond), health.Fail, "latency"},
	}
	for _, tc := range cases {
		g := &stepGate{newStats: tc.new, oldStats: tc.old}
		v := g.judge(spec(tc.gates), true)
		if v.verdict != tc.want || !strings.Contains(v.evidence, tc.evidence) {
			t.Errorf("%s: verdict %v (%s), want %v with %q", tc.name, v.verdict, v.evidence, tc.want, tc.evidence)
		}
	}
}
