package rollout

import (
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// point is one metric value and when the leader received it (unix nano).
// The version it was taken on is kept per run of points (versionRun):
// a slot's version changes once per deploy, so storing it per point
// would triple the store's size (docs/performance.md).
type point struct {
	at    int64
	value float64
}

// versionRun says that points from sequence number seq on were taken
// while the slot ran version.
type versionRun struct {
	seq     uint64
	version string
}

// series is one (host, app, metric)'s bounded ring of points, oldest
// first from head once full.
type series struct {
	ring  []point
	head  int
	total uint64 // points ever added; the oldest kept is total-len(ring)
	runs  []versionRun
}

func (s *series) add(p point, version string, capacity int) {
	if n := len(s.runs); n == 0 || s.runs[n-1].version != version {
		s.runs = append(s.runs, versionRun{seq: s.total, version: version})
	}
	if len(s.ring) < capacity {
		if len(s.ring) == cap(s.ring) {
			grown := make([]point, len(s.ring), min(max(2*cap(s.ring), 16), capacity))
			copy(grown, s.ring)
			s.ring = grown
		}
		s.ring = append(s.ring, p)
	} else {
		s.ring[s.head] = p
		s.head = (s.head + 1) % len(s.ring)
	}
	s.total++
	s.trimRuns()
}

// at returns the i-th kept point, oldest first.
func (s *series) at(i int) point { return s.ring[(s.head+i)%len(s.ring)] }

// dropBefore removes the points received before horizon (unix nano).
// Points arrive in time order, so they are a prefix.
func (s *series) dropBefore(horizon int64) {
	n := len(s.ring)
	k := 0
	for k < n && s.at(k).at < horizon {
		k++
	}
	if k == 0 {
		return
	}
	kept := make([]point, 0, n-k)
	for i := k; i < n; i++ {
		kept = append(kept, s.at(i))
	}
	s.ring, s.head = kept, 0
	s.trimRuns()
}

func (s *series) trimRuns() {
	oldest := s.total - uint64(len(s.ring))
	i := 0
	for i+1 < len(s.runs) && s.runs[i+1].seq <= oldest {
		i++
	}
	if i > 0 {
		s.runs = append(s.runs[:0:0], s.runs[i:]...)
	}
}

type sampleKey struct{ host, app, metric string }

// sampleStore keeps recent samples per (host, app, metric) in leader
// memory for the baseline comparison. Each series is a bounded ring: the
// oldest samples are dropped first.
//
// Samples are kept only while a release that compares against a baseline
// needs them (need/unneed, from the release's step), and only from the
// start of its current phase on: the baseline gate never reads older
// ones. Without such a release the store stays empty; at SampleWindow
// 4,096 a series costs up to 64 KiB.
type sampleStore struct {
	mu     sync.Mutex
	cap    int
	series map[sampleKey]*series
	// needs holds, per release comparing against a baseline, the
	// earliest receive time its gate may read.
	needs   map[string]time.Time
	horizon int64 // min of needs (unix nano); meaningful when needs is non-empty
	// reqs holds the traffic proxy's request stats per (host, app), in
	// receive order, under the same needs (request gates, baseline).
	reqs map[reqKey][]reqEntry
}

func newSampleStore(capacity int) *sampleStore {
	return &sampleStore{cap: capacity, series: map[sampleKey]*series{}, needs: map[string]time.Time{}, reqs: map[reqKey][]reqEntry{}}
}

// need records that release reads samples received from since on.
func (s *sampleStore) need(release string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.needs[release]; ok && old.Equal(since) {
		return
	}
	s.needs[release] = since
	s.recomputeLocked()
}

// unneed forgets release's need; with no release left the store empties.
func (s *sampleStore) unneed(release string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.needs[release]; !ok {
		return
	}
	delete(s.needs, release)
	s.recomputeLocked()
}

// reset forgets every need and sample (leadership lost).
func (s *sampleStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.needs = map[string]time.Time{}
	s.series = map[sampleKey]*series{}
	s.reqs = map[reqKey][]reqEntry{}
}

func (s *sampleStore) recomputeLocked() {
	if len(s.needs) == 0 {
		s.series = map[sampleKey]*series{}
		s.reqs = map[reqKey][]reqEntry{}
		return
	}
	first := true
	for _, t := range s.needs {
		if first || t.UnixNano() < s.horizon {
			s.horizon, first = t.UnixNano(), false
		}
	}
}

// observe records a heartbeat's raw samples at the time the leader
// received it (the leader's clock also defines bake windows). The version of each app's
// samples is the version of its active slot in the same heartbeat;
// samples of an app with no active slot are dropped.
func (s *sampleStore) observe(host string, hb *rollwavev1.Heartbeat, at time.Time) (badRequestStats int) {
	if hb == nil || (len(hb.GetSamples()) == 0 && len(hb.GetRequests()) == 0) {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.needs) == 0 {
		return 0
	}
	badRequestStats = s.observeRequestsLocked(host, hb, at)
	for _, ms := range hb.GetSamples() {
		v := activeVersion(hb, ms.GetApp())
		if v == "" {
			continue
		}
		k := sampleKey{host, ms.GetApp(), ms.GetMetric()}
		ser := s.series[k]
		if ser == nil {
			ser = &series{}
			s.series[k] = ser
		}
		ser.dropBefore(s.horizon)
		for _, x := range ms.GetValues() {
			ser.add(point{at: at.UnixNano(), value: x}, v, s.cap)
		}
	}
	return badRequestStats
}

// activeVersion is the version app's active slot runs, per hb; "" if
// none. A host runs a handful of apps: a scan beats a map.
func activeVersion(hb *rollwavev1.Heartbeat, app string) string {
	v := ""
	for _, sl := range hb.GetSlots() {
		if sl.GetApp() == app {
			v = sl.GetVersion() // the last one wins, as with a map
		}
	}
	return v
}

// values returns the samples of (host, app, metric) taken in [from, to]
// while the host ran version (want == true) or any other version
// (want == false).
func (s *sampleStore) values(host, app, metric, version string, want bool, from, to time.Time) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser := s.series[sampleKey{host, app, metric}]
	if ser == nil {
		return nil
	}
	var out []float64
	lo, hi := from.UnixNano(), to.UnixNano()
	seq := ser.total - uint64(len(ser.ring))
	run := 0
	for i := range len(ser.ring) {
		for run+1 < len(ser.runs) && ser.runs[run+1].seq <= seq {
			run++
		}
		p := ser.at(i)
		seq++
		if p.at < lo || p.at > hi || (ser.runs[run].version == version) != want {
			continue
		}
		out = append(out, p.value)
	}
	return out
}

// reqEntry is one heartbeat's request stats for one slot of (host, app),
// and when. Compact: ~100-300 bytes for a heartbeat's requests, where the
// full stats (every latency bucket) are ~1.6 KiB; at 5,000 hosts with a
// request gate and 2 s heartbeats that is ~0.5 instead of ~4 MiB more
// leader memory per second of bake.
type reqEntry struct {
	at      int64
	version string
	stats   health.CompactRequestStats
}

type reqKey struct{ host, app string }

// observeRequests records a heartbeat's request stats under the same
// needs as the samples; each (host, app) keeps at most s.cap entries,
// oldest dropped first. An entry that does not decode (a bad agent) is
// dropped and counted for the caller, never trusted.
func (s *sampleStore) observeRequestsLocked(host string, hb *rollwavev1.Heartbeat, at time.Time) (bad int) {
	for _, rs := range hb.GetRequests() {
		if rs.GetRequests() == 0 {
			continue
		}
		st, err := health.RequestStatsFromProto(rs)
		if err != nil {
			bad++
			continue
		}
		k := reqKey{host, rs.GetApp()}
		list := s.reqs[k]
		// Drop what no release reads any more, and the oldest beyond cap.
		i := 0
		for i < len(list) && list[i].at < s.horizon {
			i++
		}
		if over := len(list) - i + 1 - s.cap; over > 0 {
			i += over
		}
		if i > 0 {
			list = append(list[:0:0], list[i:]...)
		}
		s.reqs[k] = append(list, reqEntry{at: at.UnixNano(), version: rs.GetVersion(), stats: st.Compact()})
	}
	return bad
}

// requests adds up the request stats of (host, app) received in [from,
// to] from slots running version (want == true) or any other version
// (want == false).
func (s *sampleStore) requests(host, app, version string, want bool, from, to time.Time) health.RequestStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out health.RequestStats
	lo, hi := from.UnixNano(), to.UnixNano()
	for _, e := range s.reqs[reqKey{host, app}] {
		if e.at < lo || e.at > hi || (e.version == version) != want {
			continue
		}
		out.MergeCompact(&e.stats)
	}
	return out
}
