package micro

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// The agent's traffic proxy in front of a tiny HTTP app on loopback: the
// latency it adds per request and the requests/s it carries, against a
// direct connection to the app (issue 14: ≤ 0.2 ms p50 added, ≥ 10,000
// requests/s). Clients keep connections alive, as real ones do.

func benchApp(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// benchTargets: the app directly, and through a proxy of each protocol:
// a plain switch (all to one slot), and a weighted step (traffic.steps:
// half the requests or connections to each of two copies of the app; for
// http also with cookie stickiness), so the cost of weighting shows next
// to the plain switch.
func benchTargets(b *testing.B) []struct{ name, addr string } {
	port, other := benchApp(b), benchApp(b)
	out := []struct{ name, addr string }{{"direct", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}}
	weighted := func(sticky string) *slot.Weighting {
		return &slot.Weighting{Old: slot.Green, OldPort: other, Weight: 50, Sticky: sticky}
	}
	for _, tc := range []struct {
		name, protocol string
		w              *slot.Weighting
	}{
		{"http_proxy", slot.ProtocolHTTP, nil},
		{"tcp_proxy", slot.ProtocolTCP, nil},
		{"http_proxy_weighted", slot.ProtocolHTTP, weighted(slot.StickyNone)},
		{"http_proxy_weighted_cookie", slot.ProtocolHTTP, weighted(slot.StickyCookie)},
		{"tcp_proxy_weighted", slot.ProtocolTCP, weighted(slot.StickyNone)},
	} {
		p, err := slot.NewProxy("127.0.0.1:0", slog.New(slog.DiscardHandler), slot.WithProtocol(tc.protocol))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		if tc.w == nil {
			err = p.Point(context.Background(), slot.Blue, port)
		} else {
			err = p.PointWeighted(context.Background(), slot.Blue, port, *tc.w)
		}
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, struct{ name, addr string }{tc.name, p.Addr().String()})
	}
	return out
}

// get fetches url; an error is reported with b.Error (RunParallel's
// goroutines may not call Fatal) and returned.
func get(b *testing.B, cl *http.Client, url string) bool {
	resp, err := cl.Get(url)
	if err != nil {
		b.Error(err)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
		return false
	}
	return true
}

// BenchmarkProxyLatency: one client, one request at a time; p50 and p99
// of the round trip in µs. The proxy's added latency is its p50 minus
// direct's.
func BenchmarkProxyLatency(b *testing.B) {
	for _, tg := range benchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			url := "http://" + tg.addr + "/"
			if !get(b, cl, url) { // connect outside the timing
				return
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if !get(b, cl, url) {
					return
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkProxyThroughput: 16 keep-alive clients per CPU in parallel;
// requests/s.
func BenchmarkProxyThroughput(b *testing.B) {
	for _, tg := range benchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			url := "http://" + tg.addr + "/"
			b.SetParallelism(16) // 16 × GOMAXPROCS clients
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !get(b, cl, url) {
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
