package plan

import (
	"math"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ceilTolerance is the relative float error ceilHosts forgives before
// rounding up, so that 225 × 1.08 (243.00000000000003 in float64) is 243
// hosts, not 244. Pow and one multiplication err by a few ulps (~1e-16); a
// factor a human wrote never puts a true fraction that close to a whole host.
const ceilTolerance = 1e-12

// ceilHosts rounds a host count up, ignoring float noise.
func ceilHosts(x float64) float64 {
	return math.Ceil(x - x*ceilTolerance)
}

// sizer returns the target size of phase n for a fleet of total targeted
// hosts: the growth formula capped by max_size and by total. The sequence is
// non-decreasing in n and always at least 1.
func (p *params) sizer(total int) func(n int) int {
	limit := maxSizeCount(p.maxSize, total)
	return func(n int) int {
		var raw float64
		if p.geometric {
			raw = float64(p.canary) * math.Pow(p.factor, float64(n))
		} else {
			raw = float64(p.canary) + float64(n)*float64(p.step)
		}
		// Compare in float first: factor^n overflows int long before it
		// overflows float64 (and becomes +Inf, which compares fine).
		if raw >= float64(limit) {
			return limit
		}
		return int(ceilHosts(raw))
	}
}

// maxSizeCount resolves max_size against total targeted hosts: a count, or
// a percentage rounded up; at least 1 and at most total. Unset (0) = total.
func maxSizeCount(q *rollwavev1.Quantity, total int) int {
	v := q.GetValue()
	if v == 0 {
		return total
	}
	if q.GetPercent() {
		v = ceilHosts(v * float64(total) / 100)
	}
	if v >= float64(total) {
		return total
	}
	return max(1, int(v))
}

// bakeSchedule returns the bake time of each of n phases:
// max(min, round(first × decay^i)), clamped to never exceed the previous
// phase's bake so float rounding cannot make the sequence bump up.
func bakeSchedule(b bakeParams, n int) []int64 {
	out := make([]int64, n)
	prev := int64(math.MaxInt64)
	for i := range out {
		ms := b.firstMs
		if i > 0 {
			// v ≤ first, so converting back to int64 cannot overflow.
			if v := math.Round(float64(b.firstMs) * math.Pow(b.decay, float64(i))); v < float64(b.firstMs) {
				ms = int64(v)
			}
		}
		ms = min(max(ms, b.minMs), prev)
		out[i] = ms
		prev = ms
	}
	return out
}
