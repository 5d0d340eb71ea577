package health

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Quantiles read from the buckets are never below the true value and at
// most one bucket (2^(1/8), 9.05%) above it.
func TestLatencyHistogramQuantiles(t *testing.T) {
	var h LatencyHistogram
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Millisecond) // 1ms..1s
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.001, time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*math.Exp2(1.0/8)+1 {
			t.Errorf("q%.3g = %v, want %v .. +9%%", c.q, got, c.want)
		}
	}
	if h.Count() != 1000 {
		t.Fatalf("count %d", h.Count())
	}
	// Tiny and huge values land in the first and the overflow bucket.
	if LatencyBucket(0) != 0 || LatencyBucket(time.Nanosecond) != 0 || LatencyBucket(time.Hour) != LatencyBuckets-1 {
		t.Fatal("edge buckets")
	}
	var empty LatencyHistogram
	if empty.Quantile(0.99) != 0 {
		t.Fatal("empty histogram quantile")
	}
}

// Histograms from many hosts merge by adding counts, and survive the
// heartbeat's sparse encoding unchanged.
func TestLatencyHistogramMergeAndWire(t *testing.T) {
	var a, b, all LatencyHistogram
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		d := time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		all.Add(d)
		if r.IntN(2) == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	s := &RequestStats{Requests: a.Count(), Errors: 7, UpstreamErrors: 2, Latency: a}
	back, err := RequestStatsFromProto(RequestStatsProto("demo", rollwavev1.Slot_SLOT_BLUE, "1", "http", s))
	if err != nil {
		t.Fatal(err)
	}
	back.Merge(&RequestStats{Requests: b.Count(), Latency: b})
	if back.Latency != all || back.Requests != 5000 || back.Errors != 7 || back.UpstreamErrors != 2 {
		t.Fatalf("merged %+v", back)
	}
}

// Compact stats merge into the same totals and histogram as the stats
// they were made from, and keep only the buckets with observations.
func TestCompactRequestStatsMergeLikeTheFullOnes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var full, viaCompact RequestStats
	for k := range 50 {
		var h LatencyHistogram
		for range r.IntN(40) {
			h.Add(time.Duration(r.ExpFloat64() * float64(30*time.Millisecond)))
		}
		s := &RequestStats{Requests: h.Count() + 3, Errors: 3, UpstreamErrors: uint64(k % 2), Latency: h}
		c := s.Compact()
		if nz, _ := h.Sparse(); len(c.buckets) != len(nz) {
			t.Fatalf("compact keeps %d buckets, %d hold observations", len(c.buckets), len(nz))
		}
		full.Merge(s)
		viaCompact.MergeCompact(&c)
	}
	if full != viaCompact {
		t.Fatalf("merged compact stats %+v, want %+v", viaCompact, full)
	}
}

// A malformed report from an agent is an error naming the field.
func TestRequestStatsFromProtoRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		p    *rollwavev1.RequestStats
	}{
		{"more errors than requests", &rollwavev1.RequestStats{Requests: 1, Errors: 2}},
		{"more upstream errors than errors", &rollwavev1.RequestStats{Requests: 5, Errors: 1, UpstreamErrors: 2}},
		{"lists of different lengths", &rollwavev1.RequestStats{LatencyBuckets: []uint32{1}}},
		{"bucket out of range", &rollwavev1.RequestStats{LatencyBuckets: []uint32{LatencyBuckets}, LatencyCounts: []uint64{1}}},
		{"count overflow", &rollwavev1.RequestStats{LatencyBuckets: []uint32{1, 2}, LatencyCounts: []uint64{math.MaxUint64, 1}}},
	} {
		if _, err := RequestStatsFromProto(c.p); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// The U test on histograms is CompareBaseline's test on the same values
// rounded to their buckets: same U, same p.
func TestCompareLatencyMatchesRankTestOnBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var hc, hb LatencyHistogram
	var xc, xb []float64
	for range 400 {
		d := time.Duration((5 + 3*r.NormFloat64()) * float64(time.Millisecond))
		hb.Add(d)
		xb = append(xb, float64(LatencyBucket(d)))
		d = time.Duration((5.6 + 3*r.NormFloat64()) * float64(time.Millisecond))
		hc.Add(d)
		xc = append(xc, float64(LatencyBucket(d)))
	}
	cfg := BaselineConfig{MinSamples: 50, HigherIsWorse: true}
	got := CompareLatency(&hc, &hb, cfg)
	want := CompareBaseline(xc, xb, cfg)
	if math.Abs(got.U-want.U) > 1e-6 || math.Abs(got.P-want.P) > 1e-12 {
		t.Fatalf("histogram U=%v p=%v, rank test on buckets U=%v p=%v", got.U, got.P, want.U, want.P)
	}
}

func TestCompareLatencyVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	gen := func(n int, add time.Duration) *LatencyHistogram {
		var h LatencyHistogram
		for range n {
			h.Add(add + time.Duration((2+r.ExpFloat64())*float64(time.Millisecond)))
		}
		return &h
	}
	base := gen(2000, 0)
	cfg := BaselineConfig{MinSamples: 200, MinEffect: 0.1}
	if v := CompareLatency(gen(2000, 0), base, cfg); v.Verdict != Pass {
		t.Errorf("same latency: %s (%s)", v.Verdict, v.Detail)
	}
	if v := CompareLatency(gen(2000, 250*time.Millisecond), base, cfg); v.Verdict != Fail || v.P > 1e-9 {
		t.Errorf("+250ms: %s (%s)", v.Verdict, v.Detail)
	}
	if v := CompareLatency(gen(100, 250*time.Millisecond), base, cfg); v.Verdict != Inconclusive {
		t.Errorf("100 requests: %s (%s)", v.Verdict, v.Detail)
	}
}

// A slowdown that is significant and large relative to a sub-millisecond
// median, but smaller than the absolute floor, passes; the same slowdown
// with no floor fails, and one above the floor fails too.
func TestCompareLatencyAbsoluteFloor(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	gen := func(n int, base, add time.Duration) *LatencyHistogram {
		var h LatencyHistogram
		for range n {
			h.Add(add + time.Duration((1+r.Float64())*float64(base)))
		}
		return &h
	}
	base := gen(5000, time.Millisecond, 0)
	slower := gen(5000, time.Millisecond, 400*time.Microsecond)
	cfg := BaselineConfig{MinSamples: 200, MinEffect: 0.1}
	if v := CompareLatency(slower, base, cfg); v.Verdict != Fail {
		t.Fatalf("+0.4ms on a ~1.5ms median without a floor: %s (%s)", v.Verdict, v.Detail)
	}
	cfg.MinAbsEffect = 2
	v := CompareLatency(slower, base, cfg)
	if v.Verdict != Pass || !strings.Contains(v.Detail, "floor") {
		t.Fatalf("+0.4ms with a 2ms floor: %s (%s)", v.Verdict, v.Detail)
	}
	if v := CompareLatency(gen(5000, time.Millisecond, 5*time.Millisecond), base, cfg); v.Verdict != Fail {
		t.Fatalf("+5ms with a 2ms floor: %s (%s)", v.Verdict, v.Detail)
	}
	if err := (BaselineConfig{MinAbsEffect: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "MinAbsEffect") {
		t.Fatalf("negative floor: %v", err)
	}
}

func TestCompareErrorRates(t *testing.T) {
	cfg := BaselineConfig{MinSamples: 200}
	for _, c := range []struct {
		name       string
		ce, cn     uint64
		be, bn     uint64
		want       Verdict
		test       string
		p          float64 // reference p-value (Python, exact combinatorics / erfc); 0 = not checked
		tolerance  float64
		minEffectC float64
	}{
		// 2% vs 0.5% on 4,000 requests each: z = 6.04.
		{name: "rise from 0.5% to 2%", ce: 80, cn: 4000, be: 20, bn: 4000, want: Fail, test: "z", p: 7.808802339382312e-10, tolerance: 1e-15},
		// The same rate both sides.
		{name: "identical", ce: 20, cn: 4000, be: 20, bn: 4000, want: Pass, test: "z"},
		// Better than the baseline.
		{name: "improvement", ce: 5, cn: 4000, be: 80, bn: 4000, want: Pass, test: "z"},
		// Few errors: Fisher's exact test, [[3,297],[0,300]].
		{name: "3 of 300 vs none", ce: 3, cn: 300, be: 0, bn: 300, want: Pass, test: "fisher", p: 0.12437395659432388, tolerance: 1e-12},
		// [[4,196],[1,999]]: p = 0.00327.
		{name: "4 of 200 vs 1 of 1000", ce: 4, cn: 200, be: 1, bn: 1000, want: Fail, test: "fisher", p: 0.00326889562311113, tolerance: 1e-12},
		// Below min_requests on one side.
		{name: "too little traffic", ce: 50, cn: 199, be: 0, bn: 4000, want: Inconclusive},
		// No errors anywhere.
		{name: "no errors", ce: 0, cn: 1000, be: 0, bn: 1000, want: Pass, test: "fisher", p: 1, tolerance: 1e-12},
		// Significant, but 2.2% vs 2% is below a 20% min effect.
		{name: "below min effect", ce: 2200, cn: 100000, be: 2000, bn: 100000, want: Pass, test: "z", minEffectC: 0.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := cfg
			cc.MinEffect = c.minEffectC
			got := CompareErrorRates(c.ce, c.cn, c.be, c.bn, cc)
			if got.Verdict != c.want || (c.test != "" && got.Test != c.test) {
				t.Fatalf("%s by %s test, want %s by %s: %s", got.Verdict, got.Test, c.want, c.test, got.Detail)
			}
			if c.p != 0 && math.Abs(got.P-c.p) > c.tolerance {
				t.Fatalf("p = %.17g, want %.17g", got.P, c.p)
			}
		})
	}
}
