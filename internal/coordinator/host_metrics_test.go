package coordinator

import (
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// sampleOf keeps the resource figures, turns each slot's histogram into
// its 99th percentile and leaves the raw samples out; a histogram an agent
// got wrong gives p99 0, not an error.
func TestSampleOfSummarisesAHeartbeat(t *testing.T) {
	var h health.LatencyHistogram
	for i := 0; i < 99; i++ {
		h.Add(2 * time.Millisecond)
	}
	h.Add(400 * time.Millisecond)
	buckets, counts := h.Sparse()
	hb := &rollwavev1.Heartbeat{
		TimeUnixNano: 42,
		Host:         &rollwavev1.HostMetrics{CpuPercent: 12.5, MemPercent: 40},
		Slots:        []*rollwavev1.SlotMetrics{{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, CpuPercent: 3, RssBytes: 64 << 20}},
		Samples:      []*rollwavev1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: []float64{1, 2, 3}}},
		Requests: []*rollwavev1.RequestStats{
			{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, Version: "2.0.0", Protocol: "http", Requests: 100, Errors: 7,
				UpstreamErrors: 2, LatencyBuckets: buckets, LatencyCounts: counts},
			// Lists of different lengths: an agent's mistake.
			{App: "api", Slot: rollwavev1.Slot_SLOT_GREEN, Requests: 5, LatencyBuckets: []uint32{1, 2}, LatencyCounts: []uint64{5}},
		},
	}
	at := time.Unix(100, 0)
	got := sampleOf(hb, at)
	if got.GetReceivedUnixNano() != at.UnixNano() || got.GetSentUnixNano() != 42 {
		t.Errorf("times: received %d sent %d, want %d and 42", got.GetReceivedUnixNano(), got.GetSentUnixNano(), at.UnixNano())
	}
	if got.GetHost().GetCpuPercent() != 12.5 || len(got.GetSlots()) != 1 || got.GetSlots()[0].GetRssBytes() != 64<<20 {
		t.Errorf("resource figures not kept: %v", got)
	}
	if len(got.GetRequests()) != 2 {
		t.Fatalf("%d request rows, want 2: %v", len(got.GetRequests()), got)
	}
	r := got.GetRequests()[0]
	want := float64(health.LatencyBucketUpper(health.LatencyBucket(2*time.Millisecond))) / float64(time.Millisecond)
	if r.GetRequests() != 100 || r.GetErrors() != 7 || r.GetUpstreamErrors() != 2 || r.GetVersion() != "2.0.0" || r.GetP99Ms() != want {
		t.Errorf("request row %v, want 100 requests, 7 errors (2 upstream), version 2.0.0, p99 %g ms", r, want)
	}
	if bad := got.GetRequests()[1]; bad.GetRequests() != 5 || bad.GetP99Ms() != 0 {
		t.Errorf("a bad histogram: %v, want its counts and p99 0", bad)
	}
	// The summary shares nothing with the heartbeat it came from.
	hb.Host.CpuPercent = 99
	if got.GetHost().GetCpuPercent() != 12.5 {
		t.Error("the sample aliases the heartbeat's host metrics")
	}
}
