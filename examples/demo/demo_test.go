package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// binDir holds rollwave and rollwave-agent built for these tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollwave-demo-test-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for bin, pkg := range map[string]string{"rollwave": "./cmd/coordinator", "rollwave-agent": "./cmd/agent", "demo-app": "./examples/demo-app"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, bin), pkg)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic("build " + pkg + ": " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkClean fails the test if anything the demo started is still there.
func checkClean(t *testing.T, r runResult, out string) {
	t.Helper()
	if len(r.pids) != 9 {
		t.Errorf("expected 9 long-running children (3 servers, 6 agents), got %d", len(r.pids))
	}
	for _, pid := range r.pids {
		// Each was reaped by the demo; its group must be gone too.
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists after the demo (kill: %v)", pid, err)
		}
	}
	if len(r.strays) > 0 {
		t.Errorf("the final sweep found leftover processes: %v", r.strays)
	}
	if _, err := os.Stat(r.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s not removed: %v", r.tmp, err)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}

// demoRun is one run of the demo in a test: its output (readable while it
// runs, from a stage callback) and what it left behind.
type demoRun struct {
	out testutil.SyncBuffer
	res runResult
}

// newDemoRun skips the test in -short mode (a run starts 9 processes);
// else it returns a demoRun and a context that ends after timeout, or
// when cancel (Ctrl-C, as signal.NotifyContext does) is called.
func newDemoRun(t *testing.T, timeout time.Duration) (*demoRun, context.Context, context.CancelFunc) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts 9 processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &demoRun{}, ctx, cancel
}

// run runs the demo with the test binaries, capturing output and result.
func (r *demoRun) run(ctx context.Context, o options) int {
	o.binDir, o.out = binDir, &r.out
	o.result = func(x runResult) { r.res = x }
	return run(ctx, o)
}

// wantOutput fails the test for each of wants that out lacks.
func wantOutput(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestShortRunStartsClusterAndCleansUp(t *testing.T) {
	d, ctx, _ := newDemoRun(t, 60*time.Second)
	code := d.run(ctx, options{short: true})
	if code != 0 {
		t.Fatalf("exit code %d, want 0; output:\n%s", code, d.out.String())
	}
	wantOutput(t, d.out.String(), "$ rollwave cells set edge-1 -risk 1", "$ rollwave hosts", "h6    core")
	checkClean(t, d.res, d.out.String())
}

func TestInterruptStopsEverything(t *testing.T) {
	// Like Ctrl-C (signal.NotifyContext cancels): once the agents are
	// being waited for, interrupt.
	d, ctx, cancel := newDemoRun(t, 2*time.Minute)
	stage := func(name string) {
		if name == "agents" {
			go func() {
				// Interrupt while the demo waits for the agents to show
				// up, with every process started.
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) && !strings.Contains(d.out.String(), "-node h6") {
					time.Sleep(20 * time.Millisecond)
				}
				cancel()
			}()
		}
	}
	code := d.run(ctx, options{short: true, stage: stage})
	if code != 130 {
		t.Fatalf("exit code %d, want 130; output:\n%s", code, d.out.String())
	}
	if !strings.Contains(d.out.String(), "Interrupted") {
		t.Errorf("output does not say it was interrupted")
	}
	checkClean(t, d.res, d.out.String())
}

// printed is what the demo told its viewer, read back from its output.
type printed struct {
	dir          string // $DEMO
	dashboard    string
	token        string // to log in to the dashboard with
	coordMetrics string // coordinator c1's /metrics
	agentMetrics string // agent h1's /metrics
}

var (
	demoDirRE      = regexp.MustCompile(`Everything lives in DEMO=(\S+) and`)
	dashboardRE    = regexp.MustCompile(`Dashboard: (https://127\.0\.0\.1:\d+/ui/) `)
	coordMetricsRE = regexp.MustCompile(`coordinator c1: (https://127\.0\.0\.1:\d+/metrics)`)
	agentMetricsRE = regexp.MustCompile(`agent h1: (https://127\.0\.0\.1:\d+/metrics)`)
	tokenRE        = regexp.MustCompile(`Log in there with the demo-operator token: ([0-9a-f]+)`)
)

// readPrinted finds the URLs in the output so far; the metrics ones only
// when metrics is set (they are printed at the end).
func readPrinted(t *testing.T, out string, metrics bool) printed {
	t.Helper()
	find := func(re *regexp.Regexp) string {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("output lacks a match for %s:\n%s", re, out)
		}
		return m[1]
	}
	p := printed{dir: find(demoDirRE), dashboard: find(dashboardRE), token: find(tokenRE)}
	if metrics {
		p.coordMetrics, p.agentMetrics = find(coordMetricsRE), find(agentMetricsRE)
	}
	return p
}

// demoClient trusts the demo's CA and, with cert, presents the CLI's
// certificate (what /metrics asks for; a browser on the dashboard has none).
func demoClient(t *testing.T, dir string, cert bool) *http.Client {
	t.Helper()
	pki := filepath.Join(dir, "pki")
	caPEM, err := os.ReadFile(filepath.Join(pki, "rollwave-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in the demo CA file")
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if cert {
		kp, err := tls.LoadX509KeyPair(filepath.Join(pki, "global-cli-rollwave-0.pem"), filepath.Join(pki, "global-cli-rollwave-0-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
}

// getOK fails the test unless url answers 200 with a body containing want.
func getOK(t *testing.T, c *http.Client, url, want string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s, want 200 OK: %.300s", url, resp.Status, body)
		return
	}
	if !strings.Contains(string(body), want) {
		t.Errorf("GET %s: 200, but the body lacks %q: %.300s", url, want, body)
	}
}

// checkPrinted checks, while the demo's cluster is up, that the URLs it
// printed answer: the dashboard (its login page, no client certificate)
// and, when printed, the metrics of a coordinator and an agent.
func checkPrinted(t *testing.T, p printed) {
	t.Helper()
	getOK(t, demoClient(t, p.dir, false), p.dashboard, "Log in")
	if p.coordMetrics != "" {
		c := demoClient(t, p.dir, true)
		getOK(t, c, p.coordMetrics, "rollwave_raft_")
		getOK(t, c, p.agentMetrics, "rollwave_agent_")
	}
}

// loginOK logs in to the dashboard with the printed token, as a browser
// would (the login form, its CSRF cookie), and checks the page it lands on
// names the token.
func loginOK(t *testing.T, p printed) {
	t.Helper()
	c := demoClient(t, p.dir, false)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar = jar
	getOK(t, c, p.dashboard+"login", "Log in")
	u, err := url.Parse(p.dashboard)
	if err != nil {
		t.Fatal(err)
	}
	csrf := ""
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "rw_csrf" {
			csrf = ck.Value
		}
	}
	if csrf == "" {
		t.Fatalf("the login page set no CSRF cookie")
	}
	resp, err := c.PostForm(p.dashboard+"login", url.Values{"csrf": {csrf}, "token": {p.token}, "next": {u.Path}})
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != u.Path || !strings.Contains(string(body), "demo-operator") {
		t.Errorf("log in with the printed token: %s at %s, want 200 at %s naming demo-operator: %.300s",
			resp.Status, resp.Request.URL, u.Path, body)
	}
}

// With -keep the cluster stays up after the narration, with its URLs
// printed and answering, until Ctrl-C, which then ends the demo cleanly.
func TestKeepServesUntilInterrupted(t *testing.T) {
	d, ctx, cancel := newDemoRun(t, 2*time.Minute)
	kept := false
	stage := func(name string) {
		if name != "keep" {
			return
		}
		// Synchronous: the demo waits for this before it waits for
		// Ctrl-C, so the cluster is up throughout.
		kept = true
		p := readPrinted(t, d.out.String(), true)
		checkPrinted(t, p)
		loginOK(t, p)
		cancel() // Ctrl-C
	}
	code := d.run(ctx, options{short: true, keep: true, stage: stage})
	if code != 0 {
		t.Fatalf("exit code %d, want 0 (Ctrl-C is how -keep ends); output:\n%s", code, d.out.String())
	}
	if !kept {
		t.Fatalf("the demo never reached the keep stage; output:\n%s", d.out.String())
	}
	o := d.out.String()
	wantOutput(t, o, "-keep: the cluster stays up until Ctrl-C", "export DEMO="+d.res.tmp, "Log in there with the demo-operator token: ", "Stopping every process")
	if strings.Contains(o, "Interrupted") {
		t.Errorf("a -keep demo ended by Ctrl-C says it was interrupted")
	}
	checkClean(t, d.res, o)
}

// The whole session: the bad version (healthy, every 10th request
// failing) is rolled back because the error-rate gate failed on the
// canary's traffic, and the URLs printed answer while the cluster runs.
func TestFullRunCatchesBadVersionOnErrorRateGate(t *testing.T) {
	d, ctx, _ := newDemoRun(t, 5*time.Minute) // the whole demo: about a minute
	var stages []string
	stage := func(name string) {
		stages = append(stages, name)
		switch name {
		case "release 1.0.0":
			// Printed before the first release, answering while it runs.
			checkPrinted(t, readPrinted(t, d.out.String(), false))
		case "done":
			checkPrinted(t, readPrinted(t, d.out.String(), true))
		}
	}
	code := d.run(ctx, options{demoApp: filepath.Join(binDir, "demo-app"), releaseTimeout: 2 * time.Minute, stage: stage})
	o := d.out.String()
	if code != 0 {
		t.Fatalf("exit code %d, want 0; output:\n%s", code, o)
	}
	if len(stages) == 0 || stages[len(stages)-1] != "done" {
		t.Errorf("stages %v, want them to end with done", stages)
	}
	// The evidence the demo found in the gate.failed event, as raft holds it.
	ev := d.res.gate
	if ev["gate"] != "max_error_rate" {
		t.Fatalf("gate.failed evidence %v, want the max_error_rate gate's", ev)
	}
	num := func(k string) float64 {
		v, err := strconv.ParseFloat(ev[k], 64)
		if err != nil {
			t.Fatalf("evidence %s=%q: %v", k, ev[k], err)
		}
		return v
	}
	if req, need := num("requests"), num("min_requests"); req < need || need != minRequests {
		t.Errorf("the gate judged %v requests with min_requests %v, want at least min_requests = %d", req, need, minRequests)
	}
	if num("errors") == 0 || num("upstream_errors") != 0 {
		t.Errorf("errors=%s upstream_errors=%s: want the app's 500s, not the proxy's", ev["errors"], ev["upstream_errors"])
	}
	if rate, limit := num("value"), num("limit"); limit != 0.01 || rate <= limit {
		t.Errorf("error rate %v against limit %v, want above 0.01", rate, limit)
	}
	if ev["hosts"] != "h1" {
		t.Errorf("the gate read hosts %q, want the canary h1", ev["hosts"])
	}
	wantOutput(t, o,
		"The error-rate gate caught it",
		fmt.Sprintf("requests     %s (at least min_requests = %d to judge)", ev["requests"], minRequests),
		"> max_error_rate 1%: the phase failed",
		"Every host is back on 2.0.0",
		"3.0.0 caught in canary by the error-rate gate and rolled back",
	)
	// The dashboard is announced before the first release starts.
	if dash, rel := strings.Index(o, "Dashboard: https://"), strings.Index(o, "Release 1.0.0:"); dash < 0 || rel < 0 || dash > rel {
		t.Errorf("the dashboard URL (at %d) is not printed before the first release (at %d)", dash, rel)
	}
	// Its health check stayed fine: no host failed, the gate caught it.
	if strings.Contains(o, "host.failed") {
		t.Errorf("a host failed during the demo; only the error-rate gate should have caught 3.0.0")
	}
	checkClean(t, d.res, o)
}
