package health

import (
	"fmt"
	"math"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Latency histograms use fixed logarithmic buckets, the same on every
// host: bucket 0 holds everything up to LatencyBase, bucket i (1 ≤ i <
// LatencyBuckets-1) holds (LatencyBase·g^(i-1), LatencyBase·g^i] with
// g = 2^(1/8), and the last bucket everything above. Any quantile read
// from it is within g-1 ≈ 9% (half of that from the bucket's middle) of
// the true value.
//
// Why fixed buckets and not a sketch library (DDSketch, HDR): the
// histograms travel from untrusted agents to the leader, which adds up
// thousands of them per bake window. With one fixed layout, merging is
// adding counts bucket by bucket (exact, order-free, across hosts and
// heartbeats), a heartbeat carries only the non-empty buckets as two
// packed lists that the leader validates with one bounds check, and the
// Mann-Whitney test runs directly on the buckets as groups of ties.
// DDSketch's log mapping is the same idea, but its wire form is its own
// protobuf with open-ended bin indexes whose decoding we would have to
// bound ourselves, and HDR's mergeable form is a large fixed array.
const (
	// LatencyBase is the upper edge of the first bucket.
	LatencyBase = 10 * time.Microsecond
	// LatencyBucketsPerDoubling sets the resolution: g = 2^(1/8).
	LatencyBucketsPerDoubling = 8
	// LatencyBuckets covers 10µs·2^24 ≈ 168 s before the overflow bucket.
	LatencyBuckets = 24*LatencyBucketsPerDoubling + 2
)

// LatencyHistogram counts latencies in the fixed log buckets. The zero
// value is empty and ready; it is not safe for concurrent use.
type LatencyHistogram struct {
	counts [LatencyBuckets]uint64
	total  uint64
}

// LatencyBucket is the bucket d falls into.
func LatencyBucket(d time.Duration) int {
	if d <= LatencyBase {
		return 0
	}
	i := int(math.Ceil(LatencyBucketsPerDoubling * math.Log2(float64(d)/float64(LatencyBase))))
	return min(max(i, 1), LatencyBuckets-1)
}

// LatencyBucketUpper is bucket i's upper edge (the overflow bucket's is
// +Inf as a float; as a Duration it is its lower edge).
func LatencyBucketUpper(i int) time.Duration {
	if i >= LatencyBuckets-1 {
		i = LatencyBuckets - 2
	}
	return time.Duration(float64(LatencyBase) * math.Exp2(float64(i)/LatencyBucketsPerDoubling))
}

// Add counts one observation.
func (h *LatencyHistogram) Add(d time.Duration) {
	h.counts[LatencyBucket(d)]++
	h.total++
}

// Merge adds o's counts into h.
func (h *LatencyHistogram) Merge(o *LatencyHistogram) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// Count is the number of observations.
func (h *LatencyHistogram) Count() uint64 { return h.total }

// Quantile returns the upper edge of the bucket holding quantile q (0 <
// q ≤ 1): a conservative reading, never below the true value by more than
// rounding. An empty histogram gives 0.
func (h *LatencyHistogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return LatencyBucketUpper(i)
		}
	}
	return LatencyBucketUpper(LatencyBuckets - 1)
}

// Sparse returns the non-empty buckets and their counts, for the wire.
func (h *LatencyHistogram) Sparse() (buckets []uint32, counts []uint64) {
	for i, c := range h.counts {
		if c > 0 {
			buckets = append(buckets, uint32(i))
			counts = append(counts, c)
		}
	}
	return buckets, counts
}

// LatencyHistogramFromSparse rebuilds a histogram from Sparse's lists. A
// heartbeat comes from an agent: lists of different lengths or a bucket
// out of range are an error naming the field, never a panic.
func LatencyHistogramFromSparse(buckets []uint32, counts []uint64) (*LatencyHistogram, error) {
	if len(buckets) != len(counts) {
		return nil, fmt.Errorf("latency_buckets has %d entries but latency_counts %d", len(buckets), len(counts))
	}
	h := &LatencyHistogram{}
	for i, b := range buckets {
		if b >= LatencyBuckets {
			return nil, fmt.Errorf("latency_buckets[%d] = %d, want below %d", i, b, LatencyBuckets)
		}
		if h.total+counts[i] < h.total {
			return nil, fmt.Errorf("latency_counts overflow at [%d]", i)
		}
		h.counts[b] += counts[i]
		h.total += counts[i]
	}
	return h, nil
}

// RequestStats is what the traffic proxy counted for one slot over some
// period; stats of the same slot (or of many hosts) add up with Merge.
type RequestStats struct {
	// Requests are HTTP requests (protocol http) or connections (tcp).
	Requests uint64
	// Errors are 5xx answers plus upstream errors (http), or failed
	// connects (tcp).
	Errors uint64
	// UpstreamErrors are the errors that never reached the app: connect
	// errors and timeouts.
	UpstreamErrors uint64
	// Latency holds one observation per request (http: until the end of
	// the response; tcp: the connection's lifetime).
	Latency LatencyHistogram
}

// Merge adds o into s.
func (s *RequestStats) Merge(o *RequestStats) {
	s.Requests += o.Requests
	s.Errors += o.Errors
	s.UpstreamErrors += o.UpstreamErrors
	s.Latency.Merge(&o.Latency)
}

// ErrorRate is Errors/Requests; NaN without requests.
func (s *RequestStats) ErrorRate() float64 {
	if s.Requests == 0 {
		return math.NaN()
	}
	return float64(s.Errors) / float64(s.Requests)
}

// RequestStatsProto encodes s for a heartbeat.
func RequestStatsProto(app string, slot rollwavev1.Slot, version, protocol string, s *RequestStats) *rollwavev1.RequestStats {
	b, c := s.Latency.Sparse()
	return &rollwavev1.RequestStats{App: app, Slot: slot, Version: version, Protocol: protocol,
		Requests: s.Requests, Errors: s.Errors, UpstreamErrors: s.UpstreamErrors, LatencyBuckets: b, LatencyCounts: c}
}

// Bucket indexes of CompactRequestStats are bytes.
var _ [255 - LatencyBuckets]struct{}

// CompactRequestStats is RequestStats keeping only the latency buckets
// that hold observations. A RequestStats is ~1.6 KiB, nearly all of it
// empty buckets; a store that keeps one per heartbeat per slot (the
// leader's, while a request gate reads them) holds these instead: one
// heartbeat's worth of requests fills a few buckets.
type CompactRequestStats struct {
	Requests, Errors, UpstreamErrors uint64
	buckets                          []uint8 // LatencyBuckets < 256
	counts                           []uint64
}

// Compact returns s with its empty latency buckets left out.
func (s *RequestStats) Compact() CompactRequestStats {
	c := CompactRequestStats{Requests: s.Requests, Errors: s.Errors, UpstreamErrors: s.UpstreamErrors}
	n := 0
	for _, v := range s.Latency.counts {
		if v > 0 {
			n++
		}
	}
	c.buckets, c.counts = make([]uint8, 0, n), make([]uint64, 0, n)
	for i, v := range s.Latency.counts {
		if v > 0 {
			c.buckets = append(c.buckets, uint8(i))
			c.counts = append(c.counts, v)
		}
	}
	return c
}

// MergeCompact adds c into s: the same as Merge of the stats c was made
// from.
func (s *RequestStats) MergeCompact(c *CompactRequestStats) {
	s.Requests += c.Requests
	s.Errors += c.Errors
	s.UpstreamErrors += c.UpstreamErrors
	for i, b := range c.buckets {
		s.Latency.counts[b] += c.counts[i]
		s.Latency.total += c.counts[i]
	}
}

// RequestStatsFromProto decodes and checks an agent's report: errors may
// not exceed requests, nor upstream errors errors, and the histogram must
// be well formed.
func RequestStatsFromProto(p *rollwavev1.RequestStats) (*RequestStats, error) {
	if p.GetErrors() > p.GetRequests() {
		return nil, fmt.Errorf("errors %d exceed requests %d", p.GetErrors(), p.GetRequests())
	}
	if p.GetUpstreamErrors() > p.GetErrors() {
		return nil, fmt.Errorf("upstream_errors %d exceed errors %d", p.GetUpstreamErrors(), p.GetErrors())
	}
	h, err := LatencyHistogramFromSparse(p.GetLatencyBuckets(), p.GetLatencyCounts())
	if err != nil {
		return nil, err
	}
	return &RequestStats{Requests: p.GetRequests(), Errors: p.GetErrors(), UpstreamErrors: p.GetUpstreamErrors(), Latency: *h}, nil
}

// quantileMs is Quantile in milliseconds.
func (h *LatencyHistogram) quantileMs(q float64) float64 {
	return float64(h.Quantile(q)) / float64(time.Millisecond)
}

// CompareLatency is CompareBaseline's Mann-Whitney U test on two latency
// histograms: each bucket is one group of tied values, so U and the tie
// correction come straight from the bucket counts (no per-request data
// needs to travel). Higher latency is worse. cfg.MinSamples counts
// requests. Medians in the result are bucket edges in milliseconds.
func CompareLatency(canary, baseline *LatencyHistogram, cfg BaselineConfig) BaselineResult {
	res := BaselineResult{P: 1, N1: int(canary.Count()), N2: int(baseline.Count())}
	res.CanaryMedian, res.BaselineMedian = canary.quantileMs(0.5), baseline.quantileMs(0.5)
	cfg.HigherIsWorse = true
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
	if res.N1 < cfg.MinSamples || res.N2 < cfg.MinSamples {
		res.Detail = fmt.Sprintf("too few requests: canary %d, baseline %d, need %d each", res.N1, res.N2, cfg.MinSamples)
		return res
	}
	// U = pairs (canary, baseline) with the canary slower, ties ½.
	var u, tieTerm, below float64
	for i := range LatencyBuckets {
		c, b := float64(canary.counts[i]), float64(baseline.counts[i])
		u += c * (below + b/2)
		below += b
		if t := c + b; t > 1 {
			tieTerm += t*t*t - t
		}
	}
	n1, n2 := float64(res.N1), float64(res.N2)
	res.U = u
	res.P = mannWhitneyP(u, n1, n2, tieTerm)
	effect := relativeWorsening(res.CanaryMedian, res.BaselineMedian, true)
	slower := res.CanaryMedian - res.BaselineMedian
	significant := res.P < cfg.Alpha
	why := "no significant worsening"
	switch {
	case significant && effect >= cfg.MinEffect && slower >= cfg.MinAbsEffect:
		res.Verdict, why = Fail, "canary is slower"
	case significant && effect >= cfg.MinEffect:
		res.Verdict, why = Pass, fmt.Sprintf("significant but median %.3gms slower, below the %.3gms floor", slower, cfg.MinAbsEffect)
	case significant:
		res.Verdict, why = Pass, fmt.Sprintf("significant but median change below min effect %.0f%%", 100*cfg.MinEffect)
	default:
		res.Verdict = Pass
	}
	res.Detail = fmt.Sprintf("canary median %.3gms vs baseline %.3gms (p99 %.3gms vs %.3gms), U=%.0f of %.0f pairs, p=%.3g vs alpha %.3g (n=%d/%d): %s",
		res.CanaryMedian, res.BaselineMedian, canary.quantileMs(0.99), baseline.quantileMs(0.99), u, n1*n2, res.P, cfg.Alpha, res.N1, res.N2, why)
	return res
}

// ErrorRateResult is CompareErrorRates' outcome, with its evidence.
type ErrorRateResult struct {
	Verdict Verdict
	// Test is "z" (two-proportion z-test) or "fisher" (Fisher's exact).
	Test string
	// P is the one-sided p-value for "the canary fails more often".
	P                            float64
	CanaryRate, BaselineRate     float64
	CanaryErrors, BaselineErrors uint64
	CanaryN, BaselineN           uint64
	Detail                       string
}

// fisherBelow: Fisher's exact test is used when a cell's expected count
// under the null is below this (the usual rule for the normal
// approximation of a 2×2 table).
const fisherBelow = 5

// CompareErrorRates asks whether the canary's error rate is higher than
// the baseline's: a one-sided two-proportion z-test with pooled variance,
// or Fisher's exact test when an expected count is below 5 (few errors:
// the normal approximation is poor there). Verdicts follow
// CompareBaseline: fewer than cfg.MinSamples requests on either side is
// Inconclusive; Fail needs p < Alpha and the canary's rate above the
// baseline's by at least MinEffect (relative) — and, with a zero baseline
// rate, any errors at all count as worse.
func CompareErrorRates(canaryErrors, canaryN, baseErrors, baseN uint64, cfg BaselineConfig) ErrorRateResult {
	res := ErrorRateResult{P: 1, CanaryErrors: canaryErrors, CanaryN: canaryN, BaselineErrors: baseErrors, BaselineN: baseN,
		CanaryRate: rate(canaryErrors, canaryN), BaselineRate: rate(baseErrors, baseN), Test: "z"}
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
	if canaryErrors > canaryN || baseErrors > baseN {
		res.Detail = fmt.Sprintf("more errors than requests (canary %d/%d, baseline %d/%d)", canaryErrors, canaryN, baseErrors, baseN)
		return res
	}
	if canaryN < uint64(cfg.MinSamples) || baseN < uint64(cfg.MinSamples) {
		res.Detail = fmt.Sprintf("too few requests: canary %d, baseline %d, need %d each", canaryN, baseN, cfg.MinSamples)
		return res
	}
	n1, n2 := float64(canaryN), float64(baseN)
	x1, x2 := float64(canaryErrors), float64(baseErrors)
	pooled := (x1 + x2) / (n1 + n2)
	minExpected := min(n1*pooled, n2*pooled, n1*(1-pooled), n2*(1-pooled))
	if minExpected < fisherBelow {
		res.Test = "fisher"
		res.P = fisherUpper(canaryErrors, canaryN, baseErrors, baseN)
	} else {
		se := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2))
		res.P = normalUpper((res.CanaryRate - res.BaselineRate) / se)
	}
	effect := relativeWorsening(res.CanaryRate, res.BaselineRate, true)
	significant := res.P < cfg.Alpha
	why := "no significant rise"
	switch {
	case significant && effect >= cfg.MinEffect:
		res.Verdict, why = Fail, "canary fails more often"
	case significant:
		res.Verdict, why = Pass, fmt.Sprintf("significant but below min effect %.0f%%", 100*cfg.MinEffect)
	default:
		res.Verdict = Pass
	}
	res.Detail = fmt.Sprintf("canary %d/%d errors (%.3g%%) vs baseline %d/%d (%.3g%%), %s test p=%.3g vs alpha %.3g: %s",
		canaryErrors, canaryN, 100*res.CanaryRate, baseErrors, baseN, 100*res.BaselineRate, res.Test, res.P, cfg.Alpha, why)
	return res
}

func rate(errors, n uint64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return float64(errors) / float64(n)
}

// fisherUpper is the one-sided p-value of Fisher's exact test for the
// 2×2 table [[a, n1-a], [b, n2-b]]: the probability, with both margins
// fixed, of the canary having a or more of the a+b errors
// (hypergeometric upper tail, summed in log space). It is only called
// with few errors (an expected count below 5), so the sum is short; it is
// bounded by the error count anyway.
func fisherUpper(a, n1, b, n2 uint64) float64 {
	k := a + b // errors in all
	n := n1 + n2
	hi := min(k, n1)
	logC := func(n, r uint64) float64 {
		x, _ := math.Lgamma(float64(n) + 1)
		y, _ := math.Lgamma(float64(r) + 1)
		z, _ := math.Lgamma(float64(n-r) + 1)
		return x - y - z
	}
	denom := logC(n, k)
	var p float64
	for x := a; x <= hi; x++ {
		if k-x > n2 {
			continue
		}
		p += math.Exp(logC(n1, x) + logC(n2, k-x) - denom)
	}
	return min(max(p, 0), 1)
}

// normalUpper is P(Z > z) for a standard normal Z. math.Erfc, as in
// mannWhitneyP: gonum's distuv.UnitNormal.Survival is this same line, and
// gonum has neither Fisher's test nor the tie-corrected U on groups, so it
// would add a dependency for one formula.
func normalUpper(z float64) float64 {
	if math.IsNaN(z) {
		return 1
	}
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// CumulativeAt returns, for each bound, how many observations fall at or
// below it, and an estimate of their sum in seconds (each bucket counted
// at its geometric middle) — the shape of a Prometheus histogram. A bound
// between bucket edges counts the buckets whose upper edge is at or below
// it, so pick bounds on edges (LatencyBucketUpper) to be exact.
func (h *LatencyHistogram) CumulativeAt(bounds []time.Duration) (cum []uint64, sumSeconds float64) {
	cum = make([]uint64, len(bounds))
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		upper := LatencyBucketUpper(i)
		mid := float64(upper) / math.Exp2(0.5/LatencyBucketsPerDoubling) // upper/√g
		if i == 0 {
			mid = float64(LatencyBase) / 2
		}
		sumSeconds += float64(c) * mid / float64(time.Second)
		if i == LatencyBuckets-1 {
			continue // overflow: only +Inf holds it
		}
		for j, b := range bounds {
			if upper <= b {
				cum[j] += c
			}
		}
	}
	return cum, sumSeconds
}
