package rollout_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The request-gate tests run real agents whose built-in HTTP proxy
// carries the demo app's traffic, with a load generator sending steady
// requests through each host's proxy on loopback. Every agent has its own
// port offset (blue, green and proxy ports shift by 5 per host), so the
// apps listen on 127.0.0.1 like in production.

const reqHosts = 4 // one cell: the canary and three old-version peers

// reqPortStride is each agent's port offset step.
const reqPortStride = 5

// freePortRun finds a base port whose run of n ports is free right now.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := testutil.FreePort(t)
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no run of %d free ports", n)
	return 0
}

type reqFleet struct {
	*fleet
	base int // blue port of h1; green = base+1, proxy = base+2
	// extra is HCL added to the release block of the next releases
	// (e.g. a post_rollout block).
	extra string
	// trafficExtra is added to the traffic block of the next releases.
	trafficExtra string
	// phasesExtra is added to the phases block of the next releases.
	phasesExtra string
}

func newReqFleet(t *testing.T) *reqFleet {
	t.Helper()
	f := &reqFleet{fleet: &fleet{t: t, agents: map[string]*agenttest.Agent{}, ips: map[string]string{}, cellOf: map[string]string{},
		dir: t.TempDir()}}
	f.base = freePortRun(t, reqHosts*reqPortStride)
	// One coordinator: these tests are about the gates, and on a loaded
	// machine a 3-node test cluster with fast raft timeouts re-elects
	// every second or two; each new leader holds only the requests seen
	// since its start and waits a bake length before reading them
	// (requestWindow), which such flapping never grants.
	f.c = coordtest.NewCluster(t, 1)
	// Retried while leadership settles (a loaded machine re-elects).
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		_, err := f.c.Client(f.leader()).SetCell(ctxT(t), &v1.SetCellRequest{Actor: "test",
			Cell: &v1.Cell{Name: "edge", Risk: 1, Criticality: "low", Users: 100}})
		switch status.Code(err) {
		case codes.OK:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("set cell: %v", err)
		}
		t.Fatalf("set cell: %v", err)
		return false, ""
	})
	for i := range reqHosts {
		name := fmt.Sprintf("h%d", i+1)
		f.hosts = append(f.hosts, name)
		f.cellOf[name] = "edge"
		f.ips[name] = "127.0.0.1"
		f.agents[name] = agenttest.Start(t, name, "edge", agenttest.Options{Join: f.leader().GossipAddr(), PortOffset: i * reqPortStride})
	}
	f.waitRegistered()
	return f
}

// proxyAddr is host's public (proxy) address.
func (f *reqFleet) proxyAddr(host string) string {
	i := 0
	for j, h := range f.hosts {
		if h == host {
			i = j
		}
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(f.base+2+i*reqPortStride))
}

// release submits and starts a release of the demo app with the given
// config files (error_rate, delay) and extra lines inside gates {}.
func (f *reqFleet) release(name, version, bake string, config map[string]string, gates string) {
	f.t.Helper()
	config["healthy"] = "yes"
	a, err := demoapp.PackageConfig(demoBin, f.dir, version, config)
	if err != nil {
		f.t.Fatal(err)
	}
	src := []byte(strings.Replace(fmt.Sprintf(`release %q {
  app     = "demo"
  version = %q
  artifact {
    url    = %q
    sha256 = %q
  }
  unit {
    exec_start = "{{slot_dir}}/bin/demo-app -dir {{slot_dir}} -listen 127.0.0.1:{{port}}"
    restart    = "no"
  }
  slots {
    blue_port  = %d
    green_port = %d
    keep_old   = "hot"
  }
  traffic {
    mode     = "proxy"
    listen   = "127.0.0.1:%d"
    protocol = "http"
  }
  phases {
    canary   = 1
    growth   = "geometric"
    factor   = 2
    max_size = "50%%"
  }
  health {
    check "http" {
      url      = "http://127.0.0.1:{{port}}/healthz"
      interval = "1s"
      timeout  = "900ms"
    }
    min_healthy_time = "400ms"
    healthy_deadline = "20s"
  }
  bake {
    first = %q
    decay = 0.5
    min   = "2s"
  }
  gates {
    max_failed_hosts = 0
    max_unreachable  = 0
%s
  }
  rollback {
    on_failure        = "all"
    isolation_timeout = "20s"
  }
%s}
`, name, version, a.URL, a.SHA256, f.base, f.base+1, f.base+2, bake, gates, f.extra), "    protocol = \"http\"\n", "    protocol = \"http\"\n"+f.trafficExtra, 1))
	src = []byte(strings.Replace(string(src), "    max_size = \"50%\"\n", "    max_size = \"50%\"\n"+f.phasesExtra, 1))
	testutil.WaitFor(f.t, 20*time.Second, func() (bool, string) {
		_, err := f.client().SubmitRelease(ctxT(f.t), &v1.SubmitReleaseRequest{SourceName: name + ".hcl", Source: src, Start: true, Actor: "test"})
		switch status.Code(err) {
		case codes.OK, codes.AlreadyExists:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("start %s: %v", name, err)
		}
		f.t.Fatalf("start %s: %v", name, err)
		return false, ""
	})
}

// gateEvent returns the release's last event of kind for gate; nil if none.
func (f *reqFleet) gateEvent(id, kind, gate string) *v1.Event {
	var found *v1.Event
	for _, e := range f.eventsOf(id) {
		if e.GetKind() == kind && e.GetEvidence()["gate"] == gate {
			found = e
		}
	}
	return found
}

// loadGen sends GET / to every host's proxy at a steady rate (each
// request in its own goroutine, at most 64 in flight per host, so slow
// answers do not slow the rate) until stopped.
type loadGen struct {
	tr     *http.Transport
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64
}

func startLoad(t *testing.T, addrs []string, every time.Duration) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	g := &loadGen{cancel: cancel, tr: tr}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, addr := range addrs {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			sendEvery(ctx, cl, addr, every, func(time.Time, *http.Response) { g.sent.Add(1) })
		}()
	}
	t.Cleanup(g.stop)
	return g
}

// sendEvery sends GET / to addr every `every` (each request in its own
// goroutine, at most 64 in flight, so slow answers do not slow the rate)
// until ctx ends; done gets each answer (body read) and when it was sent.
func sendEvery(ctx context.Context, cl *http.Client, addr string, every time.Duration, done func(sent time.Time, resp *http.Response)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // 64 in flight: skip this tick
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			at := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
			resp, err := cl.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done(at, resp)
		}()
	}
}

func (g *loadGen) stop() {
	g.cancel()
	g.wg.Wait()
	g.tr.CloseIdleConnections() // no keep-alive goroutines outlive the test (goleak)
}

// TestE2ERequestGates: with steady traffic through the agents' HTTP
// proxies, a canary that answers 500 to 10% of requests (healthz fine)
// fails max_error_rate; one that adds 250ms fails max_latency_p99; a rise
// of the error rate from 0.5% to 2% fails the baseline comparison while
// an identical version passes it; and too little traffic pauses the
// release as inconclusive. Each reading's evidence is in the release's
// events.
func TestE2ERequestGates(t *testing.T) {
	f := newReqFleet(t)
	var addrs []string
	for _, h := range f.hosts {
		addrs = append(addrs, f.proxyAddr(h))
	}
	load := startLoad(t, addrs, 8*time.Millisecond) // ~125 requests/s per host

	// v1 everywhere, failing 0.5% of requests: the baseline the later
	// releases are compared with. (No latency gate here: on a loaded test
	// machine even a trivial request's p99 reaches 100ms and more; and a
	// low traffic floor, as its later phases bake only 2s.)
	f.release("demo-1", "1.0.0", "3s", map[string]string{"error_rate": "0.005"}, "    max_error_rate = \"5%\"\n    min_requests = 20")
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	if e := f.gateEvent("demo-1", "gate.passed", "max_error_rate"); e == nil || e.GetEvidence()["requests"] == "" {
		t.Fatalf("demo-1: no max_error_rate reading:\n%s", f.dump("demo-1"))
	}

	t.Run("10% errors fail max_error_rate during the bake", func(t *testing.T) {
		// A 5-minute bake: the release can only be rolled back within
		// the minute by the running reading (watchRequestGates).
		f.release("demo-2", "2.0.0", "5m", map[string]string{"error_rate": "0.1"}, "    max_error_rate = \"1%\"\n    min_requests = 100")
		f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
		e := f.gateEvent("demo-2", "gate.failed", "max_error_rate")
		if e == nil {
			t.Fatalf("no max_error_rate gate.failed:\n%s", f.dump("demo-2"))
		}
		ev := e.GetEvidence()
		reqs, _ := strconv.Atoi(ev["requests"])
		rate, _ := strconv.ParseFloat(ev["error_rate"], 64)
		pv, err := strconv.ParseFloat(ev["p_value"], 64)
		if reqs < 100 || rate <= 0.01 || ev["limit"] != "0.01" || ev["early"] != "true" || err != nil || pv >= 0.001 {
			t.Fatalf("evidence %v", ev)
		}
		t.Logf("demo-2: %s", e.GetMessage())
	})

	t.Run("250ms slower fails max_latency_p99", func(t *testing.T) {
		f.release("demo-3", "3.0.0", "5s", map[string]string{"delay": "250ms"}, "    max_latency_p99 = \"200ms\"\n    min_requests = 100")
		f.waitRelease("demo-3", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
		e := f.gateEvent("demo-3", "gate.failed", "max_latency_p99")
		if e == nil {
			t.Fatalf("no max_latency_p99 gate.failed:\n%s", f.dump("demo-3"))
		}
		p99, _ := strconv.ParseFloat(e.GetEvidence()["p99_ms"], 64)
		if p99 < 250 || e.GetEvidence()["limit"] != "200" {
			t.Fatalf("evidence %v", e.GetEvidence())
		}
		t.Logf("demo-3: %s", e.GetMessage())
	})

	t.Run("0.5% to 2% fails the baseline comparison", func(t *testing.T) {
		// A longer bake: 2% against 0.5% needs some 500 requests on
		// the canary to be significant at alpha 0.01.
		f.release("demo-4", "4.0.0", "15s", map[string]string{"error_rate": "0.02"}, "    max_error_rate = \"5%\"\n    baseline = \"compare\"\n    min_requests = 500")
		f.waitRelease("demo-4", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
		e := f.gateEvent("demo-4", "gate.failed", "baseline.error_rate")
		if e == nil {
			t.Fatalf("no baseline.error_rate gate.failed:\n%s", f.dump("demo-4"))
		}
		ev := e.GetEvidence()
		p, _ := strconv.ParseFloat(ev["p"], 64)
		if p >= 0.01 || ev["baseline_scope"] != "cells" || ev["canary_rate"] == "" || ev["baseline_rate"] == "" {
			t.Fatalf("evidence %v", ev)
		}
		if pass := f.gateEvent("demo-4", "gate.passed", "max_error_rate"); pass == nil {
			t.Fatalf("2%% is under max_error_rate 5%%, yet no gate.passed for it:\n%s", f.dump("demo-4"))
		}
		t.Logf("demo-4: %s", e.GetMessage())
	})

	t.Run("an identical version passes the baseline comparison", func(t *testing.T) {
		f.release("demo-5", "5.0.0", "15s", map[string]string{"error_rate": "0.005"}, "    baseline = \"compare\"\n    min_requests = 500")
		var e *v1.Event
		testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
			e = f.gateEvent("demo-5", "gate.passed", "baseline.error_rate")
			return e != nil, "no baseline.error_rate reading yet: " + f.fleet.release("demo-5").GetState().String()
		})
		if e.GetPhase() != 0 || f.gateEvent("demo-5", "gate.failed", "baseline.error_rate") != nil {
			t.Fatalf("readings:\n%s", f.dump("demo-5"))
		}
		// Not asserted: every process here shares the machine's cores, so a
		// canary's median can sit a few hundred microseconds above its
		// peers' with an identical version, which Mann-Whitney over
		// thousands of requests calls significant. The error-rate
		// comparison is what this subtest proves.
		if lat := f.gateEvent("demo-5", "gate.failed", "baseline.latency"); lat != nil {
			t.Logf("latency comparison on the shared machine: %s", lat.GetEvidence()["detail"])
		}
		t.Logf("demo-5: %s", e.GetMessage())
		if _, err := f.client().AbortRelease(ctxT(t), &v1.ReleaseActionRequest{Id: "demo-5", Actor: "test", Reason: "test done"}); err != nil {
			t.Fatal(err)
		}
		f.waitRelease("demo-5", v1.ReleaseState_RELEASE_STATE_ABORTED, 30*time.Second)
	})

	t.Run("too little traffic pauses as inconclusive", func(t *testing.T) {
		load.stop()
		f.release("demo-6", "6.0.0", "3s", map[string]string{"error_rate": "0.005"}, "    max_error_rate = \"1%\"\n    min_requests = 200")
		r := f.waitRelease("demo-6", v1.ReleaseState_RELEASE_STATE_PAUSED, 60*time.Second)
		e := f.gateEvent("demo-6", "gate.inconclusive", "max_error_rate")
		if e == nil || !strings.Contains(r.GetReason(), "inconclusive") || e.GetEvidence()["min_requests"] != "200" {
			t.Fatalf("release %s (%s):\n%s", r.GetState(), r.GetReason(), f.dump("demo-6"))
		}
		if f.gateEvent("demo-6", "gate.passed", "max_error_rate") != nil {
			t.Fatalf("max_error_rate passed on too little traffic:\n%s", f.dump("demo-6"))
		}
		t.Logf("demo-6: %s", e.GetMessage())
	})
}
