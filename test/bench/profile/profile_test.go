// Package profile profiles the coordinators under a simulated fleet. The
// rollwave server has no pprof endpoint, so this runs the 3 coordinators
// in-process (coordtest, on-disk raft, real gRPC and memberlist, the
// production raft timings) with the simulated agents, rolls the bench
// release out, and lets `go test -cpuprofile` record where the CPU went:
//
//	BENCH_PROFILE=1 BENCH_N=1000 go test -run TestProfileFleet -count=1 \
//	    -cpuprofile /tmp/coord.cpu -memprofile /tmp/coord.mem ./test/bench/profile/
//	go tool pprof -top -focus 'rollwave/internal|hashicorp|grpc' /tmp/coord.cpu
//
// BENCH_HEAP=FILE also writes a heap profile once every agent is connected.
// BENCH_IDLE_CPU=FILE writes a CPU profile of the idle window alone (every
// session open, heartbeats only); run it without -cpuprofile:
//
//	BENCH_PROFILE=1 BENCH_N=2000 BENCH_IDLE_CPU=/tmp/idle.cpu go test -run TestProfileFleet -count=1 ./test/bench/profile/
//	go tool pprof -top -cum -focus 'coordinator|http2Server' /tmp/idle.cpu
//
// The profile includes the simulated agents (package fleet); focus or
// ignore them in pprof.
package profile

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/bench/fleet"
)

func TestProfileFleet(t *testing.T) {
	if os.Getenv("BENCH_PROFILE") == "" {
		t.Skip("set BENCH_PROFILE=1 (with -cpuprofile) to profile coordinators under a simulated fleet")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_N")); err == nil && v > 0 {
		n = v
	}
	fleet.RaiseNoFile()
	def := coordinator.DefaultConfig()
	c := coordtest.NewCluster(t, 3, func(i int, cfg *coordinator.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = def.HeartbeatTimeout, def.ElectionTimeout
		cfg.LeaderLeaseTimeout, cfg.CommitTimeout = def.LeaderLeaseTimeout, def.CommitTimeout
		cfg.ReconcileInterval, cfg.ApplyTimeout = def.ReconcileInterval, def.ApplyTimeout
		cfg.GossipFast = false
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	defer c.Close()
	var addrs []string
	for _, cfg := range c.Configs {
		addrs = append(addrs, cfg.GRPCAddr)
	}
	leader := c.Leader(20 * time.Second)
	f := fleet.NewFleet(fleet.FleetConfig{N: n, Cells: 10, Heartbeat: 2 * time.Second, SwapLatency: 200 * time.Millisecond,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: 15 * time.Second}, addrs)
	f.SetLeaderHint(c.Configs[c.Index(leader)].GRPCAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f.Run(ctx, time.Duration(n)*time.Second/500)
	deadline := time.Now().Add(2 * time.Minute)
	for f.Connected() < n || len(leader.FSM().State().Hosts()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d/%d connected, %d registered", f.Connected(), n, len(leader.FSM().State().Hosts()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if path := os.Getenv("BENCH_IDLE_CPU"); path != "" {
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(fh); err != nil {
			t.Fatalf("BENCH_IDLE_CPU: %v (run without -cpuprofile)", err)
		}
		time.Sleep(10 * time.Second) // the idle window: heartbeats only
		pprof.StopCPUProfile()
		fh.Close()
	} else {
		time.Sleep(10 * time.Second) // idle heartbeats are part of the profile
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Coordinators and simulated agents share this process: roughly half
	// of the goroutines and stacks are the agents' side of the sessions.
	t.Logf("N=%d connected: goroutines %d, stacks in use %.1f MiB, heap in use %.1f MiB, heap objects %d",
		n, runtime.NumGoroutine(), float64(ms.StackInuse)/(1<<20), float64(ms.HeapInuse)/(1<<20), ms.HeapObjects)
	if path := os.Getenv("BENCH_HEAP"); path != "" {
		// The heap with every session open (go test's -memprofile is
		// written after teardown). Server-side allocations:
		//   go tool pprof -sample_index=inuse_space -focus 'http2Server|coordinator' FILE
		runtime.GC()
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(fh, 0); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		if gh, err := os.Create(path + ".goroutines.txt"); err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(gh, 1)
			gh.Close()
		}
	}
	cl := c.Client(leader)
	submitted := time.Now()
	if _, err := cl.SubmitRelease(ctx, &rollwavev1.SubmitReleaseRequest{SourceName: "bench.hcl",
		Source: []byte(fleet.ReleaseSpec("bench-1", "bench", "25%", 1)), Start: true, Actor: "profile"}); err != nil {
		t.Fatal(err)
	}
	for {
		rel := leader.FSM().State().Release("bench-1")
		switch rel.GetState() {
		case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, rollwavev1.ReleaseState_RELEASE_STATE_FAILED,
			rollwavev1.ReleaseState_RELEASE_STATE_PAUSED, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK:
			r := fleet.Analyse(rel, f.Deliveries(), submitted)
			t.Logf("N=%d %s in %.1fs; phase overhead p50/p99/max %.0f/%.0f/%.0f ms; order latency p50/p99 %.0f/%.0f ms",
				n, rel.GetState(), r.TotalSeconds, r.PhaseOverhead.P50, r.PhaseOverhead.P99, r.PhaseOverhead.Max, r.OrderLatency.P50, r.OrderLatency.P99)
			for _, p := range r.Phases {
				t.Logf("phase %2d hosts %4d wall %6.0f ms sim %5.0f overhead %5.0f detect %5.0f last-ack %5.0f",
					p.Index, p.Hosts, p.WallMs, p.SimulatedMs, p.OverheadMs, p.DetectMs, p.LastAckMs)
			}
			return
		}
		if time.Since(submitted) > 8*time.Minute || ctx.Err() != nil {
			t.Fatalf("release still %s", rel.GetState())
		}
		time.Sleep(250 * time.Millisecond)
	}
}
