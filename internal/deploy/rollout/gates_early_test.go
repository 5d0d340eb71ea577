package rollout

import (
	"math"
	"testing"
)

func TestBinomialUpperTail(t *testing.T) {
	for _, c := range []struct {
		k, n uint64
		p    float64
		want float64
	}{
		{0, 100, 0.01, 1},
		{1, 100, 0.01, 1 - math.Pow(0.99, 100)}, // 0.634
		{1, 1, 0.5, 0.5},
		{6, 100, 0.01, 0.000534534}, // 10 % errors against a 1 % limit: early after ~60-100 requests
		{2, 200, 0.01, 0.595354},    // 1 % errors at a 1 % limit: never early
		{10, 1000, 0.01, 0.542699},
	} {
		got := binomialUpperTail(c.k, c.n, c.p)
		if math.Abs(got-c.want) > 0.001*math.Max(c.want, 0.01) {
			t.Errorf("P(X >= %d | n=%d, p=%g) = %.6g, want %.6g", c.k, c.n, c.p, got, c.want)
		}
	}
	// A version at the limit stays above alpha on average, one clearly
	// above it falls below quickly.
	if binomialUpperTail(12, 1000, 0.01) < earlyFailAlpha {
		t.Error("1.2 % errors against a 1 % limit would fail early")
	}
	if binomialUpperTail(10, 100, 0.01) >= earlyFailAlpha {
		t.Error("10 % errors over 100 requests against a 1 % limit would not fail early")
	}
}
