package httpapi_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollwave/rollwave/internal/httpapi"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// start runs a listener on a free loopback port and stops it at the end.
func start(t *testing.T, cfg httpapi.Config) *httpapi.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := httpapi.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// client is an HTTP client that keeps no idle connections (goleak).
func client(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// parseMetrics parses a /metrics page with the Prometheus text parser.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "rollwave_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	notReady := errors.New("no raft leader known")
	var isReady atomic.Bool
	s := start(t, httpapi.Config{Gatherer: reg, Ready: func() error {
		if isReady.Load() {
			return nil
		}
		return notReady
	}})
	base := "http://" + s.Addr()
	hc := client(nil)

	code, body := do(t, hc, "GET", base+"/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	fams := parseMetrics(t, body)
	if f := fams["rollwave_test_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Fatalf("rollwave_test_total missing or wrong: %v", f)
	}
	if code, body := do(t, hc, "GET", base+"/v1/health", nil); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/v1/health: %d %s", code, body)
	}
	code, body = do(t, hc, "GET", base+"/v1/ready", nil)
	var got struct{ Status, Reason string }
	_ = json.Unmarshal([]byte(body), &got)
	if code != 503 || got.Status != "not_ready" || got.Reason != notReady.Error() {
		t.Fatalf("/v1/ready while not ready: %d %s", code, body)
	}
	isReady.Store(true)
	if code, body := do(t, hc, "GET", base+"/v1/ready", nil); code != 200 {
		t.Fatalf("/v1/ready when ready: %d %s", code, body)
	}
	if code, _ := do(t, hc, "HEAD", base+"/v1/health", nil); code != 200 {
		t.Fatalf("HEAD /v1/health: %d", code)
	}
}

func TestBadRequests(t *testing.T) {
	s := start(t, httpapi.Config{Gatherer: prometheus.NewRegistry()})
	base := "http://" + s.Addr()
	hc := client(nil)
	cases := []struct {
		name, method, path string
		code               int
		want               string
	}{
		// Writes are refused before any handler runs.
		{"post metrics", "POST", "/metrics", 405, "only serves reads"},
		{"delete ready", "DELETE", "/v1/ready", 405, "method DELETE"},
		{"put pprof", "PUT", "/debug/pprof/heap", 405, "GET, HEAD"},
		// Unknown paths say what exists.
		{"unknown", "GET", "/v1/releases", 404, "/metrics, /v1/health"},
		{"root", "GET", "/", 404, "no such endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, hc, tc.method, base+tc.path, nil)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s: %d %s; want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}

	// Headers over the limit are refused, and the server stays up.
	big := strings.Repeat("x", 64<<10)
	if code, _ := do(t, hc, "GET", base+"/v1/health", map[string]string{"X-Big": big}); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header: %d", code)
	}
	if code, _ := do(t, hc, "GET", base+"/v1/health", nil); code != 200 {
		t.Fatalf("after oversized header: %d", code)
	}
}

func TestPprofGuard(t *testing.T) {
	// Nil policy: always refused.
	off := start(t, httpapi.Config{})
	hc := client(nil)
	if code, body := do(t, hc, "GET", "http://"+off.Addr()+"/debug/pprof/heap", nil); code != 403 || !strings.Contains(body, "pprof is off") {
		t.Fatalf("pprof without policy: %d %s", code, body)
	}
	// A token policy: 401 without a token, 403 with a weak one, 200 with admin.
	policy := func(r *http.Request) error {
		switch httpapi.BearerToken(r) {
		case "":
			return fmt.Errorf("%w: pprof needs an admin ACL token (Authorization: Bearer …)", httpapi.ErrUnauthorized)
		case "admin-secret":
			return nil
		default:
			return fmt.Errorf("%w: token has role read; pprof needs admin", httpapi.ErrForbidden)
		}
	}
	s := start(t, httpapi.Config{Pprof: policy})
	base := "http://" + s.Addr()
	if code, body := do(t, hc, "GET", base+"/debug/pprof/goroutine?debug=1", nil); code != 401 || !strings.Contains(body, "admin ACL token") {
		t.Fatalf("pprof without token: %d %s", code, body)
	}
	if code, body := do(t, hc, "GET", base+"/debug/pprof/goroutine?debug=1", map[string]string{"Authorization": "Bearer reader"}); code != 403 || !strings.Contains(body, "needs admin") {
		t.Fatalf("pprof with read token: %d %s", code, body)
	}
	code, body := do(t, hc, "GET", base+"/debug/pprof/goroutine?debug=1", map[string]string{"Authorization": "Bearer admin-secret"})
	if !httpapi.PprofBuilt {
		// Built with -tags nopprof (the packaged agent): allowed, but absent.
		if code != 404 || !strings.Contains(body, "without pprof") {
			t.Fatalf("pprof in a nopprof build: %d %s", code, body)
		}
		return
	}
	if code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof with admin token: %d %.200s", code, body)
	}
	if code, body := do(t, hc, "GET", base+"/debug/pprof/profile?seconds=3600", map[string]string{"Authorization": "Bearer admin-secret"}); code != 400 || !strings.Contains(body, "seconds") {
		t.Fatalf("pprof profile for an hour: %d %s", code, body)
	}
}

func TestTLSNeedsClientCertForMetrics(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(kind tlsutil.Role) *tlsutil.Reloader {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: ca.CertFile, CAKeyFile: ca.KeyFile, Kind: kind, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		c := tlsutil.DefaultConfig()
		c.CAFile, c.CertFile, c.KeyFile = ca.CertFile, g.CertFile, g.KeyFile
		r, err := tlsutil.NewReloader(c)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s := start(t, httpapi.Config{Certs: issue(tlsutil.RoleServer), Gatherer: prometheus.NewRegistry(), Pprof: func(*http.Request) error { return nil }})
	base := "https://" + s.Addr()

	withCert, err := issue(tlsutil.RoleCLI).ClientTLSConfig(tlsutil.RoleCLI)
	if err != nil {
		t.Fatal(err)
	}
	withCert.NextProtos = nil
	noCert := withCert.Clone()
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }

	// Probes need no certificate; metrics and pprof do.
	if code, body := do(t, client(noCert), "GET", base+"/v1/health", nil); code != 200 {
		t.Fatalf("health without a client cert: %d %s", code, body)
	}
	if code, body := do(t, client(noCert), "GET", base+"/metrics", nil); code != 401 || !strings.Contains(body, "client certificate") {
		t.Fatalf("metrics without a client cert: %d %s", code, body)
	}
	if code, _ := do(t, client(noCert), "GET", base+"/debug/pprof/heap", nil); code != 401 {
		t.Fatalf("pprof without a client cert: %d", code)
	}
	if code, body := do(t, client(withCert), "GET", base+"/metrics", nil); code != 200 {
		t.Fatalf("metrics with a client cert: %d %s", code, body)
	}
	// Plain HTTP on the TLS port is not served (Go answers with a 400).
	if code, body := do(t, client(nil), "GET", "http://"+s.Addr()+"/v1/health", nil); code != 400 {
		t.Fatalf("plain HTTP on the TLS port: %d %s", code, body)
	}
}

func TestCloseStopsListener(t *testing.T) {
	s, err := httpapi.Start(httpapi.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if code, _ := do(t, client(nil), "GET", "http://"+addr+"/v1/health", nil); code != 200 {
		t.Fatalf("health: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", addr)
	}
	// Close twice is harmless.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesOff(t *testing.T) {
	for _, addr := range []string{"", "off"} {
		if _, err := httpapi.Start(httpapi.Config{Addr: addr}); err == nil {
			t.Fatalf("Start(%q) succeeded", addr)
		}
	}
	if _, err := httpapi.Start(httpapi.Config{Addr: "127.0.0.1:notaport"}); err == nil || !strings.Contains(err.Error(), "HTTP address") {
		t.Fatalf("bad address: %v", err)
	}
}
