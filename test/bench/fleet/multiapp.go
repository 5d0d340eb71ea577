package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// hbBody is the part of a heartbeat that does not change between sends:
// one slot and two sample series per hosted app (the values are constant).
// Built once per fleet and shared read-only by every agent's sends.
type hbBody struct {
	slots   []*rollwavev1.SlotMetrics
	samples []*rollwavev1.MetricSamples
}

func newHBBody(apps []string) hbBody {
	if len(apps) == 0 {
		apps = []string{"bench"}
	}
	var b hbBody
	for _, app := range apps {
		b.slots = append(b.slots, &rollwavev1.SlotMetrics{App: app, Slot: rollwavev1.Slot_SLOT_BLUE, Version: "1.0.0",
			Healthy: true, HealthyForMs: 60000, CpuPercent: 2, RssBytes: 50 << 20})
		b.samples = append(b.samples,
			&rollwavev1.MetricSamples{App: app, Metric: "cpu_percent", Values: []float64{1, 2, 3, 2, 1, 2, 3, 2, 1, 2}},
			&rollwavev1.MetricSamples{App: app, Metric: "check_failures", Values: []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}})
	}
	return b
}

// progressQueue sizes an agent's outgoing progress queue: room for every
// state of a swap (STAGING … FINALIZED) of every hosted app at once, so
// many releases landing on one host together do not overflow it.
func progressQueue(apps int) int { return max(64, 8*apps) }

func (f *Fleet) region() string {
	if f.cfg.Region == "" {
		return "global"
	}
	return f.cfg.Region
}

// MultiOptions asks Run for many releases at once: first one release
// alone (the baseline), then Apps releases, one per app, all submitted
// together. Every agent hosts every app (FleetConfig.Apps), so each
// release targets the whole fleet: Apps × N host swaps in flight.
type MultiOptions struct {
	Apps    int
	MaxSize string
	// Timeout bounds each release (the concurrent ones run side by side).
	Timeout time.Duration
}

// MultiApps is the app names a multi-release run uses (app-00 …).
func MultiApps(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("app-%02d", i)
	}
	return out
}

// Window is the leader's cost over one stretch of the run.
type Window struct {
	WallSeconds      float64 `json:"wall_seconds"`
	LeaderCPUSeconds float64 `json:"leader_cpu_seconds"`
	// LeaderCPUPercent is of one core over the window.
	LeaderCPUPercent  float64 `json:"leader_cpu_percent"`
	RaftEntries       uint64  `json:"raft_entries"`
	RaftEntriesPerSec float64 `json:"raft_entries_per_second"`
	RaftBytes         uint64  `json:"raft_bytes"`
	from, to          uint64
}

// MultiResult is the many-releases part of a run.
type MultiResult struct {
	Apps            int    `json:"apps"`
	HostsPerRelease int    `json:"hosts_per_release"`
	Placement       string `json:"placement"`
	// Solo is the baseline: one release (app "solo") alone on the same
	// fleet and cluster, just before the others.
	Solo       *RolloutResult   `json:"solo"`
	SoloWindow Window           `json:"solo_window"`
	Concurrent []*RolloutResult `json:"concurrent"`
	// Window covers the concurrent releases: first submit → last end.
	Window Window `json:"concurrent_window"`
	// Slowdown is each concurrent release's total time over Solo's.
	Slowdown       []float64 `json:"slowdown"`
	MaxSlowdown    float64   `json:"max_slowdown"`
	MedianSlowdown float64   `json:"median_slowdown"`
	// PhaseOverhead is over every phase of every concurrent release.
	PhaseOverhead Dist `json:"phase_overhead"`
	Succeeded     int  `json:"succeeded"`
	// DroppedReports counts simulator-side drops (should be 0).
	DroppedReports int64 `json:"dropped_reports"`
}

// windowMeter measures one Window from the cluster's /proc samples and
// the leader's last raft index.
type windowMeter struct {
	c      *Cluster
	leader func() int
	t0     time.Time
	cpu0   float64
	idx0   uint64
}

func startWindow(c *Cluster, leader func() int) *windowMeter {
	c.Sample()
	l := leader()
	return &windowMeter{c: c, leader: leader, t0: time.Now(), cpu0: c.Usage(l).CPUSeconds, idx0: lastIndex(c, l)}
}

// stop ends the window; end, if not zero, is when its work ended (the
// last release's own end time rather than when polling noticed it).
func (m *windowMeter) stop(end time.Time) Window {
	m.c.Sample()
	l := m.leader()
	if end.IsZero() || end.Before(m.t0) {
		end = time.Now()
	}
	w := Window{WallSeconds: end.Sub(m.t0).Seconds(), from: m.idx0, to: lastIndex(m.c, l)}
	// CPU is read when the poll noticed the end: over that span.
	span := time.Since(m.t0).Seconds()
	w.LeaderCPUSeconds = m.c.Usage(l).CPUSeconds - m.cpu0
	if span > 0 {
		w.LeaderCPUPercent = 100 * w.LeaderCPUSeconds / span
	}
	if w.to > w.from {
		w.RaftEntries = w.to - w.from
	}
	if w.WallSeconds > 0 {
		w.RaftEntriesPerSec = float64(w.RaftEntries) / w.WallSeconds
	}
	return w
}

// fillRaft adds the raft bytes of both windows from the leader's log.
func (r *MultiResult) fillRaft(rl *RaftLog) {
	for _, w := range []*Window{&r.SoloWindow, &r.Window} {
		_, w.RaftBytes = rl.Range(w.from, w.to)
	}
}

// runMulti runs the baseline release, then the concurrent ones, and
// compares them. Every release must end (succeeded or not) within
// mo.Timeout; a release that does not is an error of the run.
func runMulti(ctx context.Context, c *Cluster, f *Fleet, mo *MultiOptions, leader func() int) (*MultiResult, error) {
	if mo.Apps < 1 {
		return nil, fmt.Errorf("multi: %d apps; need at least 1", mo.Apps)
	}
	res := &MultiResult{Apps: mo.Apps, HostsPerRelease: len(f.agents),
		Placement: "every agent hosts every app: each release targets the whole fleet"}
	m := startWindow(c, leader)
	solo, err := SubmitAndWait(ctx, c, f, "solo-1", "solo", mo.MaxSize, mo.Timeout)
	if err != nil {
		return nil, fmt.Errorf("baseline release: %w", err)
	}
	res.Solo, res.SoloWindow = solo, m.stop(time.Time{})

	apps := MultiApps(mo.Apps)
	out := make([]*RolloutResult, len(apps))
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	m = startWindow(c, leader)
	for i, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = SubmitAndWait(ctx, c, f, app+"-1", app, mo.MaxSize, mo.Timeout)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("concurrent release %s: %w", apps[i], err)
		}
	}
	res.Window = m.stop(lastEnd(ctx, c, apps))
	res.Concurrent = out
	var overheads []time.Duration
	for _, r := range out {
		if r.State == rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED.String() {
			res.Succeeded++
		}
		s := 0.0
		if solo.TotalSeconds > 0 {
			s = r.TotalSeconds / solo.TotalSeconds
		}
		res.Slowdown = append(res.Slowdown, s)
		for _, p := range r.Phases {
			overheads = append(overheads, time.Duration(p.OverheadMs*float64(time.Millisecond)))
		}
	}
	sorted := slices.Sorted(slices.Values(res.Slowdown))
	res.MaxSlowdown = sorted[len(sorted)-1]
	res.MedianSlowdown = sorted[len(sorted)/2]
	res.PhaseOverhead = NewDist(overheads)
	res.DroppedReports = f.Dropped.Load()
	return res, nil
}

// lastEnd is the latest end (last update) among the releases of apps, as
// the replicated state records it; zero if it cannot be read.
func lastEnd(ctx context.Context, c *Cluster, apps []string) time.Time {
	l := c.Leader()
	if l < 0 {
		return time.Time{}
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := c.Nodes[l].Client.ListReleases(gctx, &rollwavev1.ListReleasesRequest{})
	if err != nil {
		return time.Time{}
	}
	var end int64
	for _, rel := range r.GetReleases() {
		if slices.Contains(apps, rel.GetSpec().GetApp()) {
			end = max(end, rel.GetUpdatedUnixNano())
		}
	}
	if end == 0 {
		return time.Time{}
	}
	return time.Unix(0, end)
}
