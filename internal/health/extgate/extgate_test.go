package extgate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func f64(v float64) *float64 { return &v }

var phaseCtx = Context{Release: "api-2", App: "api", Version: "2.0", Phase: 1, Hosts: []string{"web-1.dc", "web-2"}, Cells: []string{"c1"}}

// promServer answers /api/v1/query with the vector values given, or with
// handler when it is set. It records the queries and auth headers seen.
type promServer struct {
	*httptest.Server
	queries, auths []string
	calls          atomic.Int32
}

func newPromServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request) bool, values ...string) *promServer {
	ps := &promServer{}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.calls.Add(1)
		_ = r.ParseForm()
		ps.queries = append(ps.queries, r.Form.Get("query"))
		ps.auths = append(ps.auths, r.Header.Get("Authorization"))
		if handler != nil && handler(w, r) {
			return
		}
		var res []string
		for i, v := range values {
			res = append(res, fmt.Sprintf(`{"metric":{"host":"h%d"},"value":[1700000000,"%s"]}`, i, v))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(res, ","))
	}))
	t.Cleanup(ps.Close)
	return ps
}

func fastOpts() Options { return Options{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond} }

func TestPrometheusVerdicts(t *testing.T) {
	cases := []struct {
		name     string
		values   []string
		max, min *float64
		want     health.Verdict
		value    float64
	}{
		// every series under max: the highest is reported
		{"under max", []string{"0.001", "0.004"}, f64(0.01), nil, health.Pass, 0.004},
		// one host over max fails the gate, and is the one reported
		{"over max", []string{"0.001", "0.2"}, f64(0.01), nil, health.Fail, 0.2},
		// min: a success rate under the floor fails
		{"under min", []string{"0.999", "0.95"}, nil, f64(0.99), health.Fail, 0.95},
		{"above min", []string{"0.999", "0.995"}, nil, f64(0.99), health.Pass, 0.995},
		// no series at all: no data is no evidence
		{"empty", nil, f64(0.01), nil, health.Inconclusive, math.NaN()},
		// NaN (0/0 rate with no traffic) is no evidence either
		{"NaN", []string{"0.001", "NaN"}, f64(0.01), nil, health.Inconclusive, math.NaN()},
		{"+Inf", []string{"+Inf"}, f64(0.01), nil, health.Inconclusive, math.Inf(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := newPromServer(t, nil, tc.values...)
			g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Name: "errors", Address: ps.URL,
				Query: `rate(errors{app="{{app}}",host=~"{{hosts_regex}}"}[1m])`, Max: tc.max, Min: tc.min}, fastOpts())
			if err != nil {
				t.Fatal(err)
			}
			res := g.Read(context.Background(), phaseCtx)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s (%s)", res.Verdict, tc.want, res.Detail)
			}
			if !(math.IsNaN(tc.value) && math.IsNaN(res.Value)) && res.Value != tc.value {
				t.Fatalf("value %v, want %v", res.Value, tc.value)
			}
			wantQuery := `rate(errors{app="api",host=~"^(web-1\\.dc|web-2)$"}[1m])`
			if res.Evidence["query"] != wantQuery || ps.queries[0] != wantQuery {
				t.Fatalf("query %q (sent %q), want %q", res.Evidence["query"], ps.queries[0], wantQuery)
			}
			if tc.want == health.Inconclusive && ps.calls.Load() != 1 {
				t.Fatalf("a well-formed answer without evidence is not retried; %d calls", ps.calls.Load())
			}
		})
	}
}

func TestPrometheusErrorsAreRetriedThenInconclusive(t *testing.T) {
	ps := newPromServer(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: ps.URL, Query: "up", Max: f64(1), Attempts: 3}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	res := g.Read(context.Background(), phaseCtx)
	if res.Verdict != health.Inconclusive || ps.calls.Load() != 3 || res.Evidence["attempts"] != "3" {
		t.Fatalf("verdict %s after %d calls (evidence %v), want inconclusive after 3", res.Verdict, ps.calls.Load(), res.Evidence)
	}
}

func TestPrometheusUnreachableIsInconclusive(t *testing.T) {
	ps := newPromServer(t, nil, "0")
	addr := ps.URL
	ps.Close() // nothing listens there any more
	g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: addr, Query: "up", Max: f64(1), Attempts: 2}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	res := g.Read(context.Background(), phaseCtx)
	if res.Verdict != health.Inconclusive || !strings.Contains(res.Detail, "connection refused") {
		t.Fatalf("verdict %s: %s, want inconclusive naming the refused connection", res.Verdict, res.Detail)
	}
}

func TestPrometheusTimeoutIsInconclusive(t *testing.T) {
	release := make(chan struct{})
	ps := newPromServer(t, func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	defer close(release)
	g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: ps.URL, Query: "up", Max: f64(1), Attempts: 1, TimeoutMs: 50}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if res := g.Read(context.Background(), phaseCtx); res.Verdict != health.Inconclusive {
		t.Fatalf("verdict %s: %s, want inconclusive", res.Verdict, res.Detail)
	}
}

func TestResponseSizeCapAndNoRedirects(t *testing.T) {
	big := newPromServer(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`+strings.Repeat(" ", 4096)+`]}}`)
		return true
	})
	g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: big.URL, Query: "up", Max: f64(1), Attempts: 1},
		Options{MaxResponseBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if res := g.Read(context.Background(), phaseCtx); res.Verdict != health.Inconclusive || !strings.Contains(res.Detail, "cap") {
		t.Fatalf("oversized answer: verdict %s: %s, want inconclusive naming the cap", res.Verdict, res.Detail)
	}

	other := newPromServer(t, nil, "0")
	redirect := httptest.NewServer(http.RedirectHandler(other.URL+"/api/v1/query", http.StatusTemporaryRedirect))
	defer redirect.Close()
	g, err = New(&rollwavev1.MetricGate{Kind: KindHTTP, Url: redirect.URL, Attempts: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res := g.Read(context.Background(), phaseCtx); res.Verdict != health.Inconclusive || other.calls.Load() != 0 {
		t.Fatalf("redirect: verdict %s, %d calls to the other host; want inconclusive and none", res.Verdict, other.calls.Load())
	}
}

func TestCredentialsFromFilesNeverInEvidence(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prom-token"), []byte("s3cr3t-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := newPromServer(t, nil, "0")
	g, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: ps.URL, Query: "up", Max: f64(1), BearerTokenFile: "prom-token"},
		Options{CredentialsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res := g.Read(context.Background(), phaseCtx)
	if res.Verdict != health.Pass || ps.auths[0] != "Bearer s3cr3t-token" {
		t.Fatalf("verdict %s, auth %q; want pass with the token from the file", res.Verdict, ps.auths[0])
	}
	if b, _ := json.Marshal(res); strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("the token leaked into the result: %s", b)
	}
	// A path instead of a name, or no directory configured, is refused.
	for _, tc := range []struct {
		file, dir string
	}{{"../etc/shadow", dir}, {"/etc/shadow", dir}, {"..", dir}, {"prom-token", ""}} {
		if _, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: ps.URL, Query: "up", Max: f64(1), BearerTokenFile: tc.file},
			Options{CredentialsDir: tc.dir}); err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
			t.Fatalf("bearer_token_file %q in dir %q: err %v, want a refusal naming the field", tc.file, tc.dir, err)
		}
	}
	if _, err := New(&rollwavev1.MetricGate{Kind: KindHTTP, Url: "http://user:pw@127.0.0.1:1/"}, Options{}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("userinfo URL: err %v, want a refusal that does not repeat the password", err)
	}
}

func TestHTTPGateVerdicts(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   health.Verdict
		calls  int32
	}{
		{"pass", 200, `{"verdict":"pass","reason":"error budget fine"}`, health.Pass, 1},
		{"fail", 200, `{"verdict":"fail","reason":"checkout errors up 3x","value":0.03}`, health.Fail, 1},
		{"inconclusive", 200, `{"verdict":"inconclusive","reason":"no traffic"}`, health.Inconclusive, 1},
		// an answer that is not a verdict is no evidence; not retried
		{"garbage", 200, `<html>oops</html>`, health.Inconclusive, 1},
		{"unknown verdict", 200, `{"verdict":"maybe"}`, health.Inconclusive, 1},
		// an error status is retried, then inconclusive
		{"500", 500, `{"verdict":"pass"}`, health.Inconclusive, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got Context
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s with %q, want a JSON POST", r.Method, r.Header.Get("Content-Type"))
				}
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			g, err := New(&rollwavev1.MetricGate{Kind: KindHTTP, Name: "slo", Url: srv.URL, Attempts: 2}, fastOpts())
			if err != nil {
				t.Fatal(err)
			}
			res := g.Read(context.Background(), phaseCtx)
			if res.Verdict != tc.want || calls.Load() != tc.calls {
				t.Fatalf("verdict %s after %d call(s): %s; want %s after %d", res.Verdict, calls.Load(), res.Detail, tc.want, tc.calls)
			}
			if got.Release != "api-2" || got.Version != "2.0" || got.Gate != "http.slo" || len(got.Hosts) != 2 {
				t.Fatalf("posted context %+v", got)
			}
		})
	}
}

func TestExpandQueryEscapes(t *testing.T) {
	c := Context{App: `a"b`, Version: `1\2`, Phase: 3, Hosts: []string{"h.1"}, Cells: []string{"x", "y"}}
	got := ExpandQuery(`{{app}} {{version}} {{phase}} {{hosts}} {{hosts_regex}} {{cells_regex}} {{other}}`, c)
	want := `a\"b 1\\2 3 h.1 ^(h\\.1)$ ^(x|y)$ {{other}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// The spec validates gate queries against its own copy of the
// placeholder list (it imports nothing of health); both must agree.
func TestPlaceholdersMatchSpec(t *testing.T) {
	if !slices.Equal(Placeholders, spec.GatePlaceholders) {
		t.Fatalf("extgate.Placeholders %v != spec.GatePlaceholders %v", Placeholders, spec.GatePlaceholders)
	}
}

// The coordinator's gate_url_prefixes (Options.AllowURL) refuse a gate
// before any request is sent.
func TestAllowURLRefusesBeforeAnyRequest(t *testing.T) {
	ps := newPromServer(t, nil, "0")
	opts := Options{AllowURL: func(raw string) error {
		if strings.HasPrefix(raw, "http://prometheus.internal") {
			return nil
		}
		return fmt.Errorf("URL %q is not under the coordinator's gate_url_prefixes", raw)
	}}
	_, err := New(&rollwavev1.MetricGate{Kind: KindPrometheus, Address: ps.URL, Query: "up", Max: f64(1)}, opts)
	if err == nil || !strings.Contains(err.Error(), "gate_url_prefixes") || ps.calls.Load() != 0 {
		t.Fatalf("err %v after %d calls, want a refusal before any request", err, ps.calls.Load())
	}
}
