package rollout

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func hbWith(version string, values ...float64) *rollwavev1.Heartbeat {
	return &rollwavev1.Heartbeat{
		Slots:   []*rollwavev1.SlotMetrics{{App: "api", Version: version}},
		Samples: []*rollwavev1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: values}},
	}
}

func TestSampleStore(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	all := func(s *sampleStore, version string, want bool) []float64 {
		return s.values("h1", "api", "cpu_percent", version, want, sec(-1000), sec(1000))
	}

	t.Run("nothing kept while no release needs samples", func(t *testing.T) {
		s := newSampleStore(8)
		s.observe("h1", hbWith("1", 1, 2), sec(0))
		if got := all(s, "1", true); got != nil {
			t.Fatalf("kept %v without a need", got)
		}
		if len(s.series) != 0 {
			t.Fatalf("%d series allocated", len(s.series))
		}
	})

	t.Run("ring keeps the newest capacity samples, versions per run", func(t *testing.T) {
		s := newSampleStore(4)
		s.need("r", sec(0))
		s.observe("h1", hbWith("1", 1, 2, 3), sec(1))
		s.observe("h1", hbWith("2", 4, 5), sec(2))
		s.observe("h1", hbWith("2", 6), sec(3))
		// Kept: 3 (v1), 4, 5, 6 (v2).
		if got := all(s, "2", true); !slices.Equal(got, []float64{4, 5, 6}) {
			t.Fatalf("version 2: %v", got)
		}
		if got := all(s, "2", false); !slices.Equal(got, []float64{3}) {
			t.Fatalf("other versions: %v", got)
		}
		s.observe("h1", hbWith("2", 7), sec(4))
		// The version-1 run fell out of the ring.
		if got := all(s, "2", false); got != nil {
			t.Fatalf("other versions after wrap: %v", got)
		}
		if n := len(s.series[sampleKey{"h1", "api", "cpu_percent"}].runs); n != 1 {
			t.Fatalf("%d version runs kept, want 1", n)
		}
		// The window bounds are inclusive.
		if got := s.values("h1", "api", "cpu_percent", "2", true, sec(3), sec(4)); !slices.Equal(got, []float64{6, 7}) {
			t.Fatalf("window [3s, 4s]: %v", got)
		}
	})

	t.Run("samples before the earliest need are dropped", func(t *testing.T) {
		s := newSampleStore(16)
		s.need("a", sec(0))
		s.observe("h1", hbWith("1", 1), sec(1))
		s.observe("h1", hbWith("1", 2), sec(2))
		s.need("b", sec(5))
		s.need("a", sec(2)) // a's phase started at 2s
		s.observe("h1", hbWith("1", 3), sec(3))
		if got := all(s, "1", true); !slices.Equal(got, []float64{2, 3}) {
			t.Fatalf("kept %v, want samples from 2s on", got)
		}
		s.unneed("a")
		s.observe("h1", hbWith("1", 6), sec(6))
		if got := all(s, "1", true); !slices.Equal(got, []float64{6}) {
			t.Fatalf("kept %v, want samples from 5s on", got)
		}
		s.unneed("b")
		if got := all(s, "1", true); got != nil {
			t.Fatalf("kept %v after the last need ended", got)
		}
	})

	t.Run("reset forgets needs and samples", func(t *testing.T) {
		s := newSampleStore(16)
		s.need("a", sec(0))
		s.observe("h1", hbWith("1", 1), sec(1))
		s.reset()
		s.observe("h1", hbWith("1", 2), sec(2))
		if got := all(s, "1", true); got != nil {
			t.Fatalf("kept %v after reset", got)
		}
	})
}

// BenchmarkSampleStoreObserve: one heartbeat of 10 values into a full
// series (the steady state of a long bake): no allocation.
func BenchmarkSampleStoreObserve(b *testing.B) {
	s := newSampleStore(4096)
	s.need("r", time.Unix(0, 0))
	hb := hbWith("1", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	at := time.Unix(1, 0)
	for range 500 {
		s.observe("h1", hb, at)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.observe("h1", hb, at)
	}
}

// TestReleaseGoroutineReleasesItsSamples: however a release's goroutine
// ends (here: its release is gone), its need for samples ends with it.
func TestReleaseGoroutineReleasesItsSamples(t *testing.T) {
	o := &Orchestrator{cfg: DefaultConfig(), state: raftfsm.New(nil).State(), log: slog.New(slog.DiscardHandler),
		now: time.Now, samples: newSampleStore(16)}
	o.samples.need("gone", time.Now())
	o.runRelease(context.Background(), newRun("gone"))
	if n := len(o.samples.needs); n != 0 {
		t.Fatalf("%d needs left after the release goroutine ended", n)
	}
}

// Request stats from the proxies are kept under the same needs: per
// (host, app), at most capacity entries, none from before the horizon,
// summed per version over a window; a malformed entry is rejected.
func TestSampleStoreRequests(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	hb := func(version string, requests, errors uint64) *rollwavev1.Heartbeat {
		return &rollwavev1.Heartbeat{Requests: []*rollwavev1.RequestStats{{App: "api", Version: version, Requests: requests, Errors: errors,
			LatencyBuckets: []uint32{40}, LatencyCounts: []uint64{requests}}}}
	}
	s := newSampleStore(3)
	s.observe("h1", hb("1", 10, 1), sec(0))
	if st := s.requests("h1", "api", "1", true, sec(-10), sec(10)); st.Requests != 0 {
		t.Fatalf("kept %+v without a need", st)
	}
	s.need("r", sec(5))
	s.observe("h1", hb("1", 10, 1), sec(4)) // before the horizon: dropped on the next observe
	s.observe("h1", hb("2", 20, 2), sec(6))
	s.observe("h1", hb("1", 30, 3), sec(7))
	if bad := s.observe("h1", hb("2", 1, 5), sec(8)); bad != 1 {
		t.Fatalf("%d bad entries reported, want 1", bad)
	}
	s.observe("h1", hb("2", 40, 4), sec(9))
	if n := len(s.reqs[reqKey{"h1", "api"}]); n != 3 {
		t.Fatalf("%d entries kept, want 3", n)
	}
	v2 := s.requests("h1", "api", "2", true, sec(0), sec(9))
	other := s.requests("h1", "api", "2", false, sec(0), sec(9))
	if v2.Requests != 60 || v2.Errors != 6 || v2.Latency.Count() != 60 || other.Requests != 30 || other.Errors != 3 {
		t.Fatalf("version 2 %+v, others %+v", v2, other)
	}
	if w := s.requests("h1", "api", "2", true, sec(7), sec(8)); w.Requests != 0 {
		t.Fatalf("window [7s, 8s] holds %+v", w)
	}
	s.unneed("r")
	if len(s.reqs) != 0 {
		t.Fatal("request stats kept with no release needing them")
	}
}

// BenchmarkSampleStoreRequests: the leader memory one heartbeat's request
// stats (20 requests over a few latency buckets) add while a request gate
// reads them: the retained bytes per heartbeat are reported as
// retained-B/heartbeat (the ring itself is reused once full, so B/op is
// mostly the kept entry).
func BenchmarkSampleStoreRequests(b *testing.B) {
	var h health.LatencyHistogram
	for i := range 20 {
		h.Add(time.Duration(5+i%7) * time.Millisecond)
	}
	rs := health.RequestStatsProto("api", rollwavev1.Slot_SLOT_GREEN, "2", "http",
		&health.RequestStats{Requests: 20, Errors: 1, Latency: h})
	hb := &rollwavev1.Heartbeat{Requests: []*rollwavev1.RequestStats{rs}}
	s := newSampleStore(b.N + 1)
	s.need("r", time.Unix(0, 0))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.observe("h1", hb, time.Unix(1, int64(i)))
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "retained-B/heartbeat")
	runtime.KeepAlive(s)
}
