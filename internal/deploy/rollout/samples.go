package rollout

import (
	"sync"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// sample is one metric value from a host's active slot, tagged with the
// version that slot ran when the heartbeat carried it.
type sample struct {
	at      time.Time
	version string
	value   float64
}

type sampleKey struct{ host, app, metric string }

// sampleStore keeps recent samples per (host, app, metric) in leader
// memory for the baseline comparison. Each series is a bounded ring: the
// oldest samples are dropped first.
type sampleStore struct {
	mu     sync.Mutex
	cap    int
	series map[sampleKey][]sample
}

func newSampleStore(capacity int) *sampleStore {
	return &sampleStore{cap: capacity, series: map[sampleKey][]sample{}}
}

// observe records a heartbeat's raw samples at the time the leader
// received it (the leader's clock also defines bake windows). The version of each app's
// samples is the version of its active slot in the same heartbeat;
// samples of an app with no active slot are dropped.
func (s *sampleStore) observe(host string, hb *rollwavev1.Heartbeat, at time.Time) {
	if hb == nil || len(hb.GetSamples()) == 0 {
		return
	}
	versions := map[string]string{}
	for _, sl := range hb.GetSlots() {
		versions[sl.GetApp()] = sl.GetVersion()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ms := range hb.GetSamples() {
		v, ok := versions[ms.GetApp()]
		if !ok || v == "" {
			continue
		}
		k := sampleKey{host, ms.GetApp(), ms.GetMetric()}
		ser := s.series[k]
		for _, x := range ms.GetValues() {
			ser = append(ser, sample{at: at, version: v, value: x})
		}
		if over := len(ser) - s.cap; over > 0 {
			ser = append(ser[:0:0], ser[over:]...)
		}
		s.series[k] = ser
	}
}

// values returns the samples of (host, app, metric) taken in [from, to]
// while the host ran version (want == true) or any other version
// (want == false).
func (s *sampleStore) values(host, app, metric, version string, want bool, from, to time.Time) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []float64
	for _, x := range s.series[sampleKey{host, app, metric}] {
		if x.at.Before(from) || x.at.After(to) || (x.version == version) != want {
			continue
		}
		out = append(out, x.value)
	}
	return out
}
