package rollout_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// prometheusBin is Debian's prometheus package; .ci/run installs it.
const prometheusBin = "/usr/bin/prometheus"

// promProc is a real Prometheus started by a test on 127.0.0.1.
type promProc struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	done chan error
	log  *testutil.SyncBuffer
}

// startPrometheus runs Prometheus with a temporary config and data dir,
// scraping target every second, and waits until it is ready and has
// scraped the target. Prometheus takes a listen address, not a listener,
// so a port is picked; a port taken meanwhile is retried with another.
func startPrometheus(t *testing.T, target string) *promProc {
	t.Helper()
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s is required (Debian package prometheus; .ci/run installs it): %v", prometheusBin, err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [%q]
`, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := &promProc{t: t, addr: testutil.FreeAddr(t), done: make(chan error, 1), log: &testutil.SyncBuffer{}}
		p.cmd = exec.Command(prometheusBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--web.listen-address="+p.addr, "--log.level=warn")
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start prometheus: %v", err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(p.stop)
		if lastErr = p.waitReady(30 * time.Second); lastErr == nil {
			return p
		}
		p.stop()
		if !strings.Contains(p.log.String(), "address already in use") {
			break
		}
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func (p *promProc) url() string { return "http://" + p.addr }

func (p *promProc) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("exited: %v\n%s", err, p.log.String())
		default:
		}
		resp, err := c.Get(p.url() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s (last: %v)\n%s", within, err, p.log.String())
		}
		// Polling a child process that offers no readiness callback.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case err := <-p.done:
			t.Stop()
			p.done <- err
		case <-t.C:
		}
	}
}

// query runs an instant query and returns the body (for waits).
func (p *promProc) get(path string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(p.url() + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// queriesServed is Prometheus's own count of /api/v1/query requests.
func (p *promProc) queriesServed() int {
	body, err := p.get("/metrics")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `prometheus_http_requests_total{code="200",handler="/api/v1/query"}`) {
			f := strings.Fields(line)
			n, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int(n)
		}
	}
	return 0
}

// stop ends Prometheus (SIGTERM, then SIGKILL) and waits for it.
func (p *promProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	}
}

// TestE2EPrometheusGate: a real Prometheus scrapes a test app that
// exposes an error ratio per host and version. A release whose version
// has a 20 % error ratio fails its canary on a gate "prometheus" with
// max = 0.01 and rolls back; a healthy version bakes with passing
// readings until Prometheus is stopped mid-bake, and then pauses as
// inconclusive instead of passing.
func TestE2EPrometheusGate(t *testing.T) {
	reg := prometheus.NewRegistry()
	ratio := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rollwave_test_error_ratio", Help: "Errors per request."}, []string{"host", "version"})
	reg.MustRegister(ratio)
	app := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer app.Close()

	// One coordinator and one host per cell: what is tested is the gate,
	// and a single raft voter keeps its leadership on a loaded machine.
	f := newFleetOf(t, 1, 1)
	for _, h := range f.hosts {
		ratio.WithLabelValues(h, "2.0.0").Set(0.2)
		ratio.WithLabelValues(h, "3.0.0").Set(0.001)
	}
	prom := startPrometheus(t, strings.TrimPrefix(app.URL, "http://"))
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		body, err := prom.get(`/api/v1/query?query=count(rollwave_test_error_ratio)`)
		want := fmt.Sprintf(`"%d"`, 2*len(f.hosts))
		return err == nil && strings.Contains(body, want), fmt.Sprintf("prometheus has not scraped the app yet: %s %v", body, err)
	})

	gate := func(bake string) specOpts {
		return specOpts{bake: bake, gates: fmt.Sprintf(`    gate "prometheus" "errors" {
      address  = %q
      query    = "max(rollwave_test_error_ratio{version=\"{{version}}\",host=~\"{{hosts_regex}}\"})"
      max      = 0.01
      interval = "1s"
      timeout  = "1s"
      attempts = 2
    }`, prom.url())}
	}

	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)

	t.Run("a 20% error ratio fails the canary", func(t *testing.T) {
		f.start("demo-2", "2.0.0", gate("20s"))
		r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
		if !strings.Contains(r.GetPhases()[0].GetReason(), "prometheus.errors 0.2 > 0.01") {
			t.Fatalf("phase 0: %s\n%s", r.GetPhases()[0].GetReason(), f.dump("demo-2"))
		}
		canary := r.GetPhases()[0].GetHosts()[0]
		var failed *v1.Event
		for _, e := range f.eventsOf("demo-2") {
			if e.GetKind() == "gate.failed" && e.GetEvidence()["gate"] == "prometheus.errors" {
				failed = e
			}
		}
		wantQuery := fmt.Sprintf(`max(rollwave_test_error_ratio{version="2.0.0",host=~"^(%s)$"})`, canary)
		if failed == nil || failed.GetEvidence()["query"] != wantQuery || failed.GetEvidence()["value"] != "0.2" ||
			failed.GetEvidence()["max"] != "0.01" || failed.GetEvidence()["address"] != prom.url() {
			t.Fatalf("gate.failed evidence, want query %s, value 0.2, max 0.01:\n%s", wantQuery, f.dump("demo-2"))
		}
		// The bake was cut short: the gate failed at its first reading.
		if p := r.GetPhases()[0]; p.GetFinishedUnixNano() >= p.GetBakeDeadlineUnixNano() {
			t.Fatalf("phase 0 failed at its deadline, not during the bake:\n%s", f.dump("demo-2"))
		}
		f.waitServing(f.hosts, "1.0.0", 10*time.Second)
	})

	t.Run("prometheus stopped mid-bake pauses", func(t *testing.T) {
		before := prom.queriesServed()
		f.start("demo-3", "3.0.0", gate("60s"))
		// Two passing readings during the bake (phase 0 still baking).
		testutil.WaitFor(t, 40*time.Second, func() (bool, string) {
			r := f.release("demo-3")
			if r.GetState() != v1.ReleaseState_RELEASE_STATE_RUNNING && r.GetState() != v1.ReleaseState_RELEASE_STATE_PENDING {
				t.Fatalf("release %s (%s) before prometheus stopped:\n%s", r.GetState(), r.GetReason(), f.dump("demo-3"))
			}
			baking := len(r.GetPhases()) > 0 && r.GetPhases()[0].GetState() == v1.PhaseState_PHASE_STATE_BAKING
			n := prom.queriesServed()
			return baking && n >= before+2, fmt.Sprintf("phase 0 baking %v, %d gate queries served", baking, n-before)
		})
		prom.stop()
		r := f.waitRelease("demo-3", v1.ReleaseState_RELEASE_STATE_PAUSED, 30*time.Second)
		if !strings.Contains(r.GetReason(), "inconclusive") || r.GetPhases()[0].GetState() != v1.PhaseState_PHASE_STATE_BAKING {
			t.Fatalf("release %s: %s; phase 0 %s", r.GetState(), r.GetReason(), r.GetPhases()[0].GetState())
		}
		var inc *v1.Event
		for _, e := range f.eventsOf("demo-3") {
			if e.GetKind() == "gate.inconclusive" && e.GetEvidence()["gate"] == "prometheus.errors" {
				inc = e
			}
			if e.GetKind() == "gate.passed" || e.GetKind() == "gate.failed" {
				if e.GetEvidence()["gate"] == "prometheus.errors" {
					t.Fatalf("the gate was decided without Prometheus:\n%s", f.dump("demo-3"))
				}
			}
		}
		if inc == nil || inc.GetEvidence()["attempts"] != "2" || !strings.Contains(inc.GetEvidence()["error"], "connection refused") {
			t.Fatalf("gate.inconclusive evidence, want 2 attempts and the refused connection:\n%s", f.dump("demo-3"))
		}
		if p := r.GetPhases()[0]; time.Now().UnixNano() >= p.GetBakeDeadlineUnixNano() {
			t.Fatal("the bake ran out before the pause; the test did not observe a mid-bake reading")
		}
		f.waitServing(r.GetPhases()[0].GetHosts(), "3.0.0", 5*time.Second)
	})
}
