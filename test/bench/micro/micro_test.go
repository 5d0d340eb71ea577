// Package micro holds Go micro-benchmarks of the coordinator's hot paths
// at fleet scale: applying batched host writes, reading the host table,
// planning, and the heartbeat's wire cost.
//
//	go test -run '^$' -bench . -benchmem ./test/bench/micro/
package micro

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/spec/specpb"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/bench/fleet"
)

func host(i int) *v1.Host {
	return &v1.Host{Id: fmt.Sprintf("sim-%05d", i), Cell: fmt.Sprintf("cell-%d", i%50), Region: "global",
		AgentVersion: "1.0.0", Address: "10.0.0.1:7423", LastContactUnixNano: int64(i)}
}

// fsmWithHosts returns an FSM holding n hosts and the next log index.
func fsmWithHosts(b *testing.B, n int) (*raftfsm.FSM, uint64) {
	f := raftfsm.New(nil)
	idx := uint64(1)
	for i := 0; i < n; i += 256 {
		var hs []*v1.Host
		for j := i; j < min(n, i+256); j++ {
			hs = append(hs, host(j))
		}
		data, err := raftfsm.Encode(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: 1, Hosts: hs})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.ApplyEntry(idx, data); err != nil {
			b.Fatal(err)
		}
		idx++
	}
	return f, idx
}

// One batch of 256 host upserts (the host writer's largest entry),
// encoded and applied, into a state of 5,000 hosts.
func BenchmarkApplyUpsertHosts256(b *testing.B) {
	f, idx := fsmWithHosts(b, 5000)
	var hs []*v1.Host
	for j := 0; j < 256; j++ {
		hs = append(hs, host(j))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data, err := raftfsm.Encode(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: int64(i), Hosts: hs})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(float64(len(data)), "entry_bytes")
		}
		if _, err := f.ApplyEntry(idx, data); err != nil {
			b.Fatal(err)
		}
		idx++
	}
}

// Reading the host table (a deep copy), as planning and ListHosts do.
func BenchmarkStateHosts(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f, _ := fsmWithHosts(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(f.State().Hosts()) != n {
					b.Fatal("wrong count")
				}
			}
		})
	}
}

// Planning the bench release over the fleet.
func BenchmarkPlanCompute(b *testing.B) {
	r, err := spec.ParseRelease("bench.hcl", []byte(fleet.ReleaseSpec("bench-1", "bench", "25%", 1)))
	if err != nil {
		b.Fatal(err)
	}
	sp := specpb.ToProto(r)
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var fl plan.Fleet
			for i := 0; i < n; i++ {
				fl.Hosts = append(fl.Hosts, plan.HostInfo{ID: fmt.Sprintf("sim-%05d", i), Cell: fmt.Sprintf("cell-%d", i%50)})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := plan.Compute(sp, fl); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A heartbeat shaped like a real agent's (host metrics, one app's slot
// metrics, a few raw samples), marshalled and unmarshalled.
func BenchmarkHeartbeatWire(b *testing.B) {
	hb := &v1.Heartbeat{Seq: 42, TimeUnixNano: 1, Host: &v1.HostMetrics{CpuPercent: 3, MemPercent: 20, Load1: 0.1, DiskPercent: 30},
		Slots: []*v1.SlotMetrics{{App: "api", Slot: v1.Slot_SLOT_BLUE, Version: "2.4.0", Healthy: true, HealthyForMs: 60000, CpuPercent: 2, RssBytes: 50 << 20}},
		Samples: []*v1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: []float64{1, 2, 3, 2, 1, 2, 3, 2, 1, 2}},
			{App: "api", Metric: "check_failures", Values: []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}}
	m := &v1.AgentMessage{Msg: &v1.AgentMessage_Heartbeat{Heartbeat: hb}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(float64(len(buf)), "wire_bytes")
		}
		var out v1.AgentMessage
		if err := proto.Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// Snapshotting (the deep copy under the read lock) 5,000 hosts.
func BenchmarkSnapshot5000Hosts(b *testing.B) {
	f, _ := fsmWithHosts(b, 5000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}
