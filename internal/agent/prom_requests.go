package agent

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollwave/rollwave/internal/health"
)

// requestMetrics are the traffic proxy's per-slot RED figures as
// Prometheus counters: each heartbeat drains what the proxy measured since
// the last one (requestStats) and adds it here, so a scrape sees totals up
// to the last heartbeat. Series are kept per app, slot and version and
// dropped once that version no longer sits in that slot, so label sets do
// not pile up release after release.
//
// Why a collector over fixed-bucket totals rather than a
// prometheus.HistogramVec: the proxy counts latencies in the log buckets
// of health.LatencyHistogram (what the leader's gates and the baseline
// test use), not one observation at a time; adding a heartbeat's
// histogram to a HistogramVec would mean one Observe per request.
type requestMetrics struct {
	mu     sync.Mutex
	series map[requestKey]*requestTotals
}

type requestKey struct{ app, slot, version, protocol string }

type requestTotals struct {
	requests, errors, upstream uint64
	latency                    health.LatencyHistogram
}

// requestBounds are the histogram's bucket bounds: every second doubling
// of the proxy's buckets (10 µs · 4^k), so each bound is a bucket edge
// and the counts are exact.
var requestBounds = func() []time.Duration {
	var out []time.Duration
	for i := 0; i < health.LatencyBuckets-1; i += 2 * health.LatencyBucketsPerDoubling {
		out = append(out, health.LatencyBucketUpper(i))
	}
	return out
}()

var (
	requestLabels  = []string{"app", "slot", "version", "protocol"}
	descRequests   = prometheus.NewDesc("rollwave_agent_proxy_requests_total", "Requests (http) or connections (tcp) the traffic proxy passed to a slot, up to the last heartbeat.", requestLabels, nil)
	descErrors     = prometheus.NewDesc("rollwave_agent_proxy_errors_total", "Of those, errors: 5xx answers and upstream failures (http), connect failures (tcp).", requestLabels, nil)
	descUpstream   = prometheus.NewDesc("rollwave_agent_proxy_upstream_errors_total", "Of the errors, the slot could not be reached or timed out.", requestLabels, nil)
	descReqLatency = prometheus.NewDesc("rollwave_agent_proxy_request_duration_seconds", "Request (http) or connection (tcp) duration through the proxy; the sum counts each fine bucket at its middle.", requestLabels, nil)
)

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{series: map[requestKey]*requestTotals{}}
}

// add counts one heartbeat's drained stats of one slot.
func (m *requestMetrics) add(app, slot, version, protocol string, s *health.RequestStats) {
	k := requestKey{app, slot, version, protocol}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.series[k]
	if t == nil {
		t = &requestTotals{}
		m.series[k] = t
	}
	t.requests += s.Requests
	t.errors += s.Errors
	t.upstream += s.UpstreamErrors
	t.latency.Merge(&s.Latency)
}

// keepOnly drops the series whose app and slot no longer hold their
// version (current maps app+"/"+slot to the version in it).
func (m *requestMetrics) keepOnly(current map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if current[k.app+"/"+k.slot] != k.version {
			delete(m.series, k)
		}
	}
}

func (m *requestMetrics) collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.series {
		lv := []string{k.app, k.slot, k.version, k.protocol}
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(t.requests), lv...)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(t.errors), lv...)
		ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(t.upstream), lv...)
		cum, sum := t.latency.CumulativeAt(requestBounds)
		buckets := make(map[float64]uint64, len(cum))
		for i, b := range requestBounds {
			buckets[b.Seconds()] = cum[i]
		}
		ch <- prometheus.MustNewConstHistogram(descReqLatency, t.latency.Count(), sum, buckets, lv...)
	}
}
