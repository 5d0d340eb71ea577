package health

import (
	"slices"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Metric names used in MetricSamples. The coordinator compares samples of
// the same name between canary and baseline hosts.
const (
	MetricCPUPercent    = "cpu_percent"    // slot process tree, percent of one CPU
	MetricRSSBytes      = "rss_bytes"      // slot process tree
	MetricLatencyMs     = "latency_ms"     // health check round trip
	MetricCheckFailures = "check_failures" // failed check runs per sample period
)

// HostMetricsProto converts a host sample for a heartbeat.
func HostMetricsProto(s HostSample) *rollwavev1.HostMetrics {
	return &rollwavev1.HostMetrics{
		CpuPercent:  s.CPUPercent,
		MemPercent:  s.MemPercent,
		Load1:       s.Load1,
		DiskPercent: s.DiskPercent,
	}
}

// SlotInfo identifies a slot and carries the facts the health package does
// not know (the agent's slot driver does).
type SlotInfo struct {
	App      string
	Slot     rollwavev1.Slot
	Version  string
	Restarts uint32
}

// SlotMetricsProto combines a slot's identity, its tracker status and its
// latest process-tree sample for a heartbeat. Pass a zero ProcSample when
// the slot has no running process.
func SlotMetricsProto(info SlotInfo, st Status, ps ProcSample) *rollwavev1.SlotMetrics {
	lastErr := st.LastError
	if st.Healthy {
		// A healthy slot's old failure is history; sending it in every
		// heartbeat would read as a current problem.
		lastErr = ""
	}
	return &rollwavev1.SlotMetrics{
		App:            info.App,
		Slot:           info.Slot,
		Version:        info.Version,
		Healthy:        st.Healthy,
		HealthyForMs:   st.HealthyFor.Milliseconds(),
		LastCheckError: lastErr,
		CpuPercent:     ps.CPUPercent,
		RssBytes:       ps.RSSBytes,
		Restarts:       info.Restarts,
	}
}

// MetricSamplesProto wraps raw samples of one metric for a heartbeat. It
// returns nil for no values so callers can skip empty entries.
func MetricSamplesProto(app, metric string, values []float64) *rollwavev1.MetricSamples {
	if len(values) == 0 {
		return nil
	}
	return &rollwavev1.MetricSamples{App: app, Metric: metric, Values: slices.Clone(values)}
}

// DrainSamples drains every window (metric name → window) of one app into
// MetricSamples, sorted by metric name so heartbeats are deterministic.
// Windows with nothing new are left out.
func DrainSamples(app string, windows map[string]*Window) []*rollwavev1.MetricSamples {
	names := make([]string, 0, len(windows))
	for name := range windows {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []*rollwavev1.MetricSamples
	for _, name := range names {
		if ms := MetricSamplesProto(app, name, windows[name].Drain()); ms != nil {
			out = append(out, ms)
		}
	}
	return out
}
