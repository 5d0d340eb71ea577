// Package httpapitest reads the HTTP listener (internal/httpapi) in tests:
// plain GETs and /metrics parsed with the Prometheus text parser.
package httpapitest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Get fetches url without keeping the connection (goleak) and returns
// the status code and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// Scrape fetches http://addr/metrics and parses it; a page the
// Prometheus parser refuses fails the test.
func Scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := Get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// Value is the value of the family's sample whose labels include want
// (a counter, gauge or untyped value; a histogram's count), and whether
// there is one.
func Value(f *dto.MetricFamily, want map[string]string) (float64, bool) {
	for _, m := range f.GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// Missing lists the names in want that are not families of fams.
func Missing(fams map[string]*dto.MetricFamily, want ...string) []string {
	var out []string
	for _, n := range want {
		if fams[n] == nil {
			out = append(out, n)
		}
	}
	return out
}
