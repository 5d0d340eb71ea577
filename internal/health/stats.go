package health

import (
	"math"
	"slices"
)

// Summary describes a set of samples. The zero Summary (N == 0) describes
// no samples; its other fields are 0.
type Summary struct {
	N    int
	Mean float64
	P50  float64
	P95  float64
	Max  float64
}

// Summarize computes mean, p50, p95 and max of values without modifying
// them. NaN values are ignored.
func Summarize(values []float64) Summary {
	s := sortedClean(values)
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{
		N:    len(s),
		Mean: mean(s),
		P50:  percentileSorted(s, 50),
		P95:  percentileSorted(s, 95),
		Max:  s[len(s)-1],
	}
}

// Mean returns the arithmetic mean of values, ignoring NaN; 0 for none.
func Mean(values []float64) float64 { return mean(sortedClean(values)) }

// Max returns the largest of values, ignoring NaN; 0 for none.
func Max(values []float64) float64 {
	s := sortedClean(values)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// Percentile returns the p-th percentile (0-100) of values, ignoring NaN,
// by linear interpolation between the closest ranks (the "type 7"
// definition used by NumPy and R's default), so the 50th percentile of an
// even count is the mean of the two middle values. 0 for no values.
func Percentile(values []float64, p float64) float64 {
	return percentileSorted(sortedClean(values), p)
}

// Median is Percentile(values, 50).
func Median(values []float64) float64 { return Percentile(values, 50) }

func sortedClean(values []float64) []float64 {
	s := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	slices.Sort(s)
	return s
}

func mean(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var sum float64
	for _, v := range values {
		sum += v
	}
	return sum / float64(len(values))
}

func percentileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return s[lo] + (s[hi]-s[lo])*frac
}
