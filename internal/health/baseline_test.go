package health

import (
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Reference p-values below come from SciPy 1.10
// (scipy.stats.mannwhitneyu(canary, baseline, alternative=..., method="asymptotic")),
// which uses the same tie and continuity corrections.

func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

// TestMannWhitneyTextbook is the example from SciPy's documentation.
// Ranks by hand: 11 12 16 17 19 20 22 24 29 → the canary (16 19 22 24 29)
// holds ranks 3 5 7 8 9, R1 = 32, U1 = R1 − 5·6/2 = 17.
func TestMannWhitneyTextbook(t *testing.T) {
	canary := []float64{19, 22, 16, 29, 24}
	baseline := []float64{20, 11, 17, 12}

	u, ties := rankSumU(sortedClean(canary), sortedClean(baseline))
	if u != 17 || ties != 0 {
		t.Fatalf("U1 = %g (ties %g), want 17", u, ties)
	}
	if got := bruteForceU(canary, baseline); got != 17 {
		t.Fatalf("pair count %g", got)
	}

	r := CompareBaseline(canary, baseline, BaselineConfig{MinSamples: 4, HigherIsWorse: true})
	if r.U != 17 || !closeTo(r.P, 0.055673443266570206) || r.Verdict != Pass || r.N1 != 5 || r.N2 != 4 {
		t.Fatalf("higher is worse: %+v", r)
	}
	if r.CanaryMedian != 22 || r.BaselineMedian != 14.5 {
		t.Fatalf("medians %g %g", r.CanaryMedian, r.BaselineMedian)
	}
	// The other direction: U counts the 3 pairs where the canary is lower.
	r = CompareBaseline(canary, baseline, BaselineConfig{MinSamples: 4})
	if r.U != 3 || !closeTo(r.P, 0.9669037101389033) || r.Verdict != Pass {
		t.Fatalf("lower is worse: %+v", r)
	}
}

func TestMannWhitneyTies(t *testing.T) {
	canary := []float64{1, 2, 2, 3, 3, 3, 4, 4, 5, 5}
	baseline := []float64{1, 1, 1, 2, 2, 2, 3, 3, 4, 4}
	r := CompareBaseline(canary, baseline, BaselineConfig{HigherIsWorse: true})
	if r.U != 69.5 || !closeTo(r.P, 0.07072943286356229) || r.Verdict != Pass {
		t.Fatalf("greater: %+v", r)
	}
	if got := bruteForceU(canary, baseline); got != 69.5 {
		t.Fatalf("pair count %g", got)
	}
	r = CompareBaseline(canary, baseline, BaselineConfig{})
	if r.U != 30.5 || !closeTo(r.P, 0.9391609686161125) {
		t.Fatalf("less: %+v", r)
	}
}

func TestCompareBaselineVerdicts(t *testing.T) {
	seq := func(from, to float64) []float64 {
		var s []float64
		for v := from; v <= to; v++ {
			s = append(s, v)
		}
		return s
	}
	latencyCanary := []float64{12.1, 13.4, 11.8, 14.2, 12.9, 13.7, 15.1, 12.5, 13.3, 14.8, 13.0, 12.2}
	latencyBase := []float64{10.2, 11.1, 10.8, 9.9, 10.5, 11.4, 10.1, 10.9, 11.0, 10.4, 10.7, 11.3}

	tests := []struct {
		name             string
		canary, baseline []float64
		cfg              BaselineConfig
		verdict          Verdict
		p                float64 // SciPy reference; 0 = not checked
		detail           string
	}{
		// Completely separated: U = 100, p = 9.13e-5, median +181%.
		{"shifted up", seq(11, 20), seq(1, 10), BaselineConfig{HigherIsWorse: true, MinEffect: 0.1},
			Fail, 9.133589555477501e-05, "canary is worse"},
		// Shifted, but in the good direction.
		{"shifted down is better", seq(1, 10), seq(11, 20), BaselineConfig{HigherIsWorse: true, MinEffect: 0.1},
			Pass, 0, "no significant worsening"},
		// Latency +22%: significant and material.
		{"latency +22%", latencyCanary, latencyBase, BaselineConfig{HigherIsWorse: true, MinEffect: 0.1},
			Fail, 1.82922767694855e-05, "canary is worse"},
		// The same shift, but the operator only cares about +50%.
		{"below min effect", latencyCanary, latencyBase, BaselineConfig{HigherIsWorse: true, MinEffect: 0.5},
			Pass, 1.82922767694855e-05, "significant but median change below min effect 50%"},
		// Throughput: lower is worse.
		{"throughput down", []float64{870, 905, 880, 899, 910, 875, 892, 888, 901, 883},
			[]float64{980, 1010, 995, 1002, 990, 1005, 998, 1012, 987, 1001}, BaselineConfig{MinEffect: 0.05},
			Fail, 9.133589555477501e-05, "canary is worse"},
		// Failures where the baseline has none: any worsening is infinite.
		{"zero baseline", []float64{0, 0, 0, 1, 1, 1, 1, 1, 1, 1}, make([]float64, 10),
			BaselineConfig{HigherIsWorse: true, MinEffect: 0.1}, Fail, 0.000808386415310303, "baseline is 0"},
		// Same distribution.
		{"identical", latencyBase, latencyBase, BaselineConfig{HigherIsWorse: true}, Pass, 0, "no significant worsening"},
		// Every value tied: no evidence at all.
		{"all tied", []float64{5, 5, 5, 5, 5, 5, 5, 5}, []float64{5, 5, 5, 5, 5, 5, 5, 5},
			BaselineConfig{HigherIsWorse: true}, Pass, 1, "(+0.0%), U=32.0 of 64 pairs, p=1 "},
		// Too few samples is never a pass.
		{"tiny canary", seq(100, 104), seq(1, 30), BaselineConfig{HigherIsWorse: true},
			Inconclusive, 1, "too few samples: canary 5, baseline 30, need 8 each"},
		{"tiny baseline", seq(1, 30), seq(1, 3), BaselineConfig{HigherIsWorse: true, MinSamples: 20},
			Inconclusive, 1, "need 20 each"},
		{"empty", nil, nil, BaselineConfig{}, Inconclusive, 1, "too few samples"},
		// NaN samples are dropped before counting.
		{"NaN dropped", append(seq(1, 7), math.NaN()), seq(1, 10), BaselineConfig{},
			Inconclusive, 1, "canary 7"},
		{"invalid alpha", seq(1, 10), seq(1, 10), BaselineConfig{Alpha: 2}, Inconclusive, 1, "Alpha 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := CompareBaseline(tc.canary, tc.baseline, tc.cfg)
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s: %s", r.Verdict, tc.verdict, r.Detail)
			}
			if tc.p != 0 && !closeTo(r.P, tc.p) {
				t.Errorf("p = %.17g, want %.17g", r.P, tc.p)
			}
			if !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", r.Detail, tc.detail)
			}
		})
	}
}

// TestMannWhitneyApproximation checks the claim in DefaultMinSamples:
// from 8 samples a side (no ties) the normal approximation is within 0.006
// of the exact p-value for every U, and over-states it wherever the exact
// p is below 0.04 (where alpha lives), so it errs towards Pass.
func TestMannWhitneyApproximation(t *testing.T) {
	for _, size := range [][2]int{{8, 8}, {8, 20}, {12, 12}, {20, 8}, {20, 30}} {
		n1, n2 := size[0], size[1]
		exact := exactUpperTail(n1, n2)
		for u := 0; u <= n1*n2; u++ {
			approx := mannWhitneyP(float64(u), float64(n1), float64(n2), 0)
			if d := math.Abs(approx - exact[u]); d > 0.006 {
				t.Errorf("%dx%d U=%d: approx %.5f exact %.5f (diff %.4f)", n1, n2, u, approx, exact[u], d)
			}
			if exact[u] < 0.04 && approx < exact[u] {
				t.Errorf("%dx%d U=%d: approx %.5f below exact %.5f in the tail", n1, n2, u, approx, exact[u])
			}
		}
	}
}

// exactUpperTail returns P(U >= u) for u = 0..n1·n2 under the null
// hypothesis, by counting arrangements: c(m, k, u) = c(m−1, k, u−k) + c(m, k−1, u).
func exactUpperTail(n1, n2 int) []float64 {
	maxU := n1 * n2
	// count[m][k] is the distribution of U for m canary and k baseline values.
	count := make([][][]float64, n1+1)
	for m := range count {
		count[m] = make([][]float64, n2+1)
		for k := range count[m] {
			count[m][k] = make([]float64, maxU+1)
			if m == 0 || k == 0 {
				count[m][k][0] = 1
				continue
			}
			for u := 0; u <= maxU; u++ {
				// The largest value is a canary value (beats all k) or a
				// baseline value (beats none of the canary).
				if u >= k {
					count[m][k][u] += count[m-1][k][u-k]
				}
				count[m][k][u] += count[m][k-1][u]
			}
		}
	}
	var total float64
	for _, c := range count[n1][n2] {
		total += c
	}
	tail := make([]float64, maxU+2)
	for u := maxU; u >= 0; u-- {
		tail[u] = tail[u+1] + count[n1][n2][u]/total
	}
	return tail[:maxU+1]
}

// bruteForceU counts pairs (c, b) with c > b, ties counting ½.
func bruteForceU(canary, baseline []float64) float64 {
	var u float64
	for _, c := range canary {
		for _, b := range baseline {
			switch {
			case c > b:
				u++
			case c == b:
				u += 0.5
			}
		}
	}
	return u
}

// samples draws small integer-valued samples so ties are common.
func samples(t *rapid.T, label string) []float64 {
	ints := rapid.SliceOfN(rapid.IntRange(0, 12), 0, 40).Draw(t, label)
	out := make([]float64, len(ints))
	for i, v := range ints {
		out[i] = float64(v)
	}
	return out
}

func TestMannWhitneyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := samples(t, "a"), samples(t, "b")
		cfg := BaselineConfig{
			MinSamples:    rapid.IntRange(0, 10).Draw(t, "min_samples"),
			HigherIsWorse: rapid.Bool().Draw(t, "higher_is_worse"),
			MinEffect:     rapid.SampledFrom([]float64{0, 0.05, 0.1}).Draw(t, "min_effect"),
		}

		// U from ranks equals the pair count.
		if len(a) > 0 && len(b) > 0 {
			u, _ := rankSumU(sortedClean(a), sortedClean(b))
			if want := bruteForceU(a, b); u != want {
				t.Fatalf("rank-sum U %g, pair count %g", u, want)
			}
		}

		// Equal inputs never fail, whichever side is which.
		if r := CompareBaseline(a, slices.Clone(a), cfg); r.Verdict == Fail {
			t.Fatalf("identical samples failed: %s", r.Detail)
		}

		// Swapping sides: both directions cannot be significantly worse.
		ab, ba := CompareBaseline(a, b, cfg), CompareBaseline(b, a, cfg)
		if ab.Verdict == Fail && ba.Verdict == Fail {
			t.Fatalf("both directions fail: %s / %s", ab.Detail, ba.Detail)
		}

		// Order of samples does not matter.
		rev := slices.Clone(a)
		slices.Reverse(rev)
		if r := CompareBaseline(rev, b, cfg); r.Verdict != ab.Verdict || r.P != ab.P || r.U != ab.U {
			t.Fatalf("order changed the result: %+v vs %+v", r, ab)
		}

		// Too little data is never a pass.
		minN := cfg.MinSamples
		if minN == 0 {
			minN = DefaultMinSamples
		}
		if (len(a) < minN || len(b) < minN) && ab.Verdict != Inconclusive {
			t.Fatalf("%d/%d samples (min %d) gave %s", len(a), len(b), minN, ab.Verdict)
		}
		if ab.P < 0 || ab.P > 1 || math.IsNaN(ab.P) {
			t.Fatalf("p out of range: %g", ab.P)
		}
	})
}

func TestVerdictString(t *testing.T) {
	if Verdict(0) != Inconclusive || Inconclusive.String() != "inconclusive" || Pass.String() != "pass" || Fail.String() != "fail" {
		t.Fatal("verdict strings")
	}
}
