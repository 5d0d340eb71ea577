package agent

import (
	"context"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// metricWindows keeps per-app sample windows between heartbeats.
type metricWindows struct {
	mu   sync.Mutex
	cap  int
	apps map[string]map[string]*health.Window
	host health.HostSample
	proc map[string]health.ProcSample
}

func newMetricWindows(capacity int) *metricWindows {
	return &metricWindows{cap: capacity, apps: map[string]map[string]*health.Window{}, proc: map[string]health.ProcSample{}}
}

func (m *metricWindows) add(app, metric string, t time.Time, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ws, ok := m.apps[app]
	if !ok {
		ws = map[string]*health.Window{}
		m.apps[app] = ws
	}
	w, ok := ws[metric]
	if !ok {
		w = health.NewWindow(m.cap)
		ws[metric] = w
	}
	w.Add(t, v)
}

// sampleLoop samples the host and every app's active slot on the heartbeat
// interval, so each heartbeat carries the samples taken since the last.
func (a *Agent) sampleLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		a.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) sampleOnce(ctx context.Context) {
	if hs, err := a.sampler.SampleHost(ctx); err == nil {
		a.metrics.mu.Lock()
		a.metrics.host = hs
		a.metrics.mu.Unlock()
	}
	for _, app := range a.mgr.Apps() {
		pid := a.mgr.ActivePID(app)
		if pid <= 0 {
			continue
		}
		ps, err := a.sampler.SampleProcess(ctx, pid)
		if err != nil {
			continue
		}
		a.metrics.mu.Lock()
		a.metrics.proc[app] = ps
		a.metrics.mu.Unlock()
		a.metrics.add(app, health.MetricCPUPercent, ps.Time, ps.CPUPercent)
		a.metrics.add(app, health.MetricRSSBytes, ps.Time, float64(ps.RSSBytes))
	}
}

// heartbeat builds the next heartbeat: host metrics, per-slot summary,
// the samples since the last heartbeat, and slot facts.
func (a *Agent) heartbeat(ctx context.Context, seq uint64) *rollwavev1.Heartbeat {
	a.metrics.mu.Lock()
	host := a.metrics.host
	procs := make(map[string]health.ProcSample, len(a.metrics.proc))
	for k, v := range a.metrics.proc {
		procs[k] = v
	}
	var samples []*rollwavev1.MetricSamples
	for app, ws := range a.metrics.apps {
		samples = append(samples, health.DrainSamples(app, ws)...)
	}
	a.metrics.mu.Unlock()

	hb := &rollwavev1.Heartbeat{
		Seq:          seq,
		TimeUnixNano: a.clock.Now().UnixNano(),
		Host:         health.HostMetricsProto(host),
		Samples:      samples,
		Facts:        a.mgr.Facts(),
	}
	for _, app := range a.mgr.Apps() {
		st, ok := a.mgr.AppState(app)
		if !ok || st.Active == "" {
			continue
		}
		info := health.SlotInfo{App: app, Slot: slotProto(st.Active)}
		if s := st.Slots[st.Active]; s != nil {
			info.Version = s.Version
		}
		if us, err := a.cfg.Driver.Status(ctx, app, st.Active); err == nil {
			info.Restarts = us.Restarts
		}
		var hs health.Status
		if c := a.existingCtl(app); c != nil {
			hs, _ = c.healthStatus()
		}
		hb.Slots = append(hb.Slots, health.SlotMetricsProto(info, hs, procs[app]))
	}
	hb.Requests = a.requestStats()
	return hb
}

// requestStats drains what each app's traffic proxy measured since the
// last heartbeat, per slot, with the version each slot runs.
func (a *Agent) requestStats() []*rollwavev1.RequestStats {
	var out []*rollwavev1.RequestStats
	for _, app := range a.mgr.Apps() {
		protocol, stats, ok := a.mgr.DrainRequestStats(app)
		if !ok || len(stats) == 0 {
			continue
		}
		st, _ := a.mgr.AppState(app)
		for _, name := range []slot.Name{slot.Blue, slot.Green} {
			s := stats[name]
			if s == nil {
				continue
			}
			version := ""
			if ss := st.Slots[name]; ss != nil {
				version = ss.Version
			}
			a.prom.requests.add(app, string(name), version, protocol, s)
			out = append(out, health.RequestStatsProto(app, slotProto(name), version, protocol, s))
		}
	}
	return out
}

func slotProto(n slot.Name) rollwavev1.Slot {
	switch n {
	case slot.Blue:
		return rollwavev1.Slot_SLOT_BLUE
	case slot.Green:
		return rollwavev1.Slot_SLOT_GREEN
	}
	return rollwavev1.Slot_SLOT_UNSPECIFIED
}
