package agent

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rollwave/rollwave/internal/health"
)

type collectFunc func(chan<- prometheus.Metric)

func (f collectFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func gatherRequests(t *testing.T, m *requestMetrics) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectFunc(m.collect))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// Heartbeats' drained stats add up per app, slot and version; the
// histogram's buckets are cumulative and exact on the proxy's bucket
// edges; a version that left its slot loses its series.
func TestProxyRequestMetricsAddUpAndForgetOldVersions(t *testing.T) {
	m := newRequestMetrics()
	hb := func(reqs, errs uint64, lat ...time.Duration) *health.RequestStats {
		s := &health.RequestStats{Requests: reqs, Errors: errs}
		for _, d := range lat {
			s.Latency.Add(d)
		}
		return s
	}
	m.add("web", "green", "2.0.0", "http", hb(3, 1, 100*time.Microsecond, 2*time.Millisecond, 2*time.Millisecond))
	m.add("web", "green", "2.0.0", "http", hb(2, 0, 30*time.Second, 5*time.Millisecond))
	m.add("web", "blue", "1.0.0", "http", hb(7, 7))

	fams := gatherRequests(t, m)
	find := func(name, slot string) *dto.Metric {
		for _, mm := range fams[name].GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "slot" && l.GetValue() == slot {
					return mm
				}
			}
		}
		t.Fatalf("%s has no series for slot %s: %v", name, slot, fams[name])
		return nil
	}
	if v := find("rollwave_agent_proxy_requests_total", "green").GetCounter().GetValue(); v != 5 {
		t.Errorf("green requests = %v, want 5", v)
	}
	if v := find("rollwave_agent_proxy_errors_total", "blue").GetCounter().GetValue(); v != 7 {
		t.Errorf("blue errors = %v, want 7", v)
	}
	h := find("rollwave_agent_proxy_request_duration_seconds", "green").GetHistogram()
	if h.GetSampleCount() != 5 {
		t.Fatalf("histogram count %d, want 5", h.GetSampleCount())
	}
	at := func(le float64) uint64 {
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() >= le*0.999 && b.GetUpperBound() <= le*1.001 {
				return b.GetCumulativeCount()
			}
		}
		t.Fatalf("no bucket at %g: %v", le, h.GetBucket())
		return 0
	}
	// Bounds are 10 µs · 4^k: 160 µs holds the 100 µs request, 2.56 ms the
	// two 2 ms ones, 10.24 ms the 5 ms one; 30 s is below 41.9 s.
	if got := []uint64{at(160e-6), at(2.56e-3), at(10.24e-3), at(41.94304)}; got[0] != 1 || got[1] != 3 || got[2] != 4 || got[3] != 5 {
		t.Errorf("cumulative counts at 160µs, 2.56ms, 10.24ms, 41.9s = %v, want [1 3 4 5]", got)
	}
	if s := h.GetSampleSum(); s < 30 || s > 33 {
		t.Errorf("sum %v s, want about 30.01", s)
	}

	m.keepOnly(map[string]string{"web/green": "2.0.0", "web/blue": "3.0.0"})
	fams = gatherRequests(t, m)
	if n := len(fams["rollwave_agent_proxy_requests_total"].GetMetric()); n != 1 {
		t.Fatalf("after blue moved to 3.0.0: %d series, want only green's", n)
	}
}
