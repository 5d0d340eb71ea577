package health

import (
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

func TestHostMetricsProto(t *testing.T) {
	got := HostMetricsProto(HostSample{CPUPercent: 12.5, MemPercent: 40, Load1: 0.7, DiskPercent: 63})
	want := &rollwavev1.HostMetrics{CpuPercent: 12.5, MemPercent: 40, Load1: 0.7, DiskPercent: 63}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

func TestSlotMetricsProto(t *testing.T) {
	info := SlotInfo{App: "api", Slot: rollwavev1.Slot_SLOT_GREEN, Version: "2.4.0", Restarts: 1}
	ps := ProcSample{CPUPercent: 35, RSSBytes: 64 << 20}

	// Unhealthy: the current error is reported.
	st := Status{HealthyFor: 0, LastError: "http check api: status 503, want 2xx"}
	got := SlotMetricsProto(info, st, ps)
	want := &rollwavev1.SlotMetrics{
		App: "api", Slot: rollwavev1.Slot_SLOT_GREEN, Version: "2.4.0",
		LastCheckError: "http check api: status 503, want 2xx",
		CpuPercent:     35, RssBytes: 64 << 20, Restarts: 1,
	}
	if !proto.Equal(got, want) {
		t.Fatalf("unhealthy: got %v", got)
	}

	// Healthy: an old failure is history and not sent.
	st = Status{Healthy: true, HealthyFor: 90 * time.Second, LastError: "old"}
	got = SlotMetricsProto(info, st, ps)
	if !got.Healthy || got.HealthyForMs != 90000 || got.LastCheckError != "" {
		t.Fatalf("healthy: got %v", got)
	}
}

func TestMetricSamplesProto(t *testing.T) {
	if MetricSamplesProto("api", MetricCPUPercent, nil) != nil {
		t.Fatal("empty samples should be nil")
	}
	in := []float64{1, 2}
	ms := MetricSamplesProto("api", MetricLatencyMs, in)
	in[0] = 99
	if ms.App != "api" || ms.Metric != "latency_ms" || ms.Values[0] != 1 {
		t.Fatalf("got %v (values must be copied)", ms)
	}
}

func TestDrainSamples(t *testing.T) {
	cpu, rss, idle := NewWindow(8), NewWindow(8), NewWindow(8)
	cpu.Add(epoch, 10)
	cpu.Add(epoch.Add(time.Second), 20)
	rss.Add(epoch, 1e6)
	windows := map[string]*Window{MetricRSSBytes: rss, MetricCPUPercent: cpu, MetricLatencyMs: idle}

	got := DrainSamples("api", windows)
	if len(got) != 2 || got[0].Metric != MetricCPUPercent || got[1].Metric != MetricRSSBytes {
		t.Fatalf("got %v", got)
	}
	if len(got[0].Values) != 2 || got[0].Values[1] != 20 {
		t.Fatalf("cpu values %v", got[0].Values)
	}
	// Drained: the next heartbeat carries nothing.
	if again := DrainSamples("api", windows); len(again) != 0 {
		t.Fatalf("second drain %v", again)
	}
}
