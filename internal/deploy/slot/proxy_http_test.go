package slot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/testutil"
)

// httpBackend serves h on a loopback port and returns the port.
func httpBackend(t *testing.T, h http.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// statsOf drains p and returns each slot's stats (never nil).
func statsOf(t *testing.T, p *Proxy, wantProtocol string) map[Name]*health.RequestStats {
	t.Helper()
	proto, st := p.DrainStats()
	if proto != wantProtocol {
		t.Fatalf("protocol %q, want %q", proto, wantProtocol)
	}
	if st == nil {
		st = map[Name]*health.RequestStats{}
	}
	return st
}

// drainUntil adds up what p measures until blue and green have seen
// wantBlue and wantGreen requests: a request is recorded when its handler
// returns, which may be just after the client has read the response.
func drainUntil(t *testing.T, p *Proxy, protocol string, wantBlue, wantGreen uint64) (blue, green *health.RequestStats) {
	t.Helper()
	blue, green = &health.RequestStats{}, &health.RequestStats{}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st := statsOf(t, p, protocol)
		if st[Blue] != nil {
			blue.Merge(st[Blue])
		}
		if st[Green] != nil {
			green.Merge(st[Green])
		}
		return blue.Requests >= wantBlue && green.Requests >= wantGreen,
			fmt.Sprintf("blue %d of %d, green %d of %d requests recorded", blue.Requests, wantBlue, green.Requests, wantGreen)
	})
	return blue, green
}

// Requests over one keep-alive client connection are counted against the
// slot active when each arrives: 5xx as errors, every request timed.
func TestHTTPProxyCountsPerSlot(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32 // client connections the proxy accepted, seen from the backend's side
	mk := func(name string) int {
		return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Host == "" || r.Header.Get("X-Forwarded-For") == "" {
				w.WriteHeader(http.StatusTeapot)
				return
			}
			if strings.HasPrefix(r.URL.Path, "/fail") {
				http.Error(w, name+" failed", http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, name)
		}))
	}
	a, b := mk("A"), mk("B")
	p := newTestProxy(t, WithProtocol(ProtocolHTTP))
	if err := p.Point(context.Background(), Blue, a); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DialContext: func(ctx context.Context, n, addr string) (net.Conn, error) {
		conns.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, n, addr)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := cl.Get("http://" + p.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	for i := range 20 {
		path := "/"
		if i%4 == 0 {
			path = "/fail"
		}
		if code, body := get(path); (path == "/" && (code != 200 || body != "A")) || (path == "/fail" && code != 500) {
			t.Fatalf("GET %s: %d %q", path, code, body)
		}
	}
	// The switch applies to the next request on the same connection.
	if err := p.Point(context.Background(), Green, b); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if code, body := get("/"); code != 200 || body != "B" {
			t.Fatalf("after the switch: %d %q", code, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("the client opened %d connections to the proxy, want 1 (keep-alive)", n)
	}
	blue, green := drainUntil(t, p, ProtocolHTTP, 20, 10)
	if blue.Requests != 20 || blue.Errors != 5 || blue.UpstreamErrors != 0 ||
		green.Requests != 10 || green.Errors != 0 || blue.Latency.Count() != 20 || green.Latency.Count() != 10 {
		t.Fatalf("stats blue %+v green %+v", blue, green)
	}
}

// A slot that refuses connections answers 502 through the proxy, counted
// as an error that never reached the app.
func TestHTTPProxyUpstreamErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: connection refused
	p := newTestProxy(t, WithProtocol(ProtocolHTTP))
	if err := p.Point(context.Background(), Green, dead); err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	for range 3 {
		resp, err := cl.Get("http://" + p.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
	}
	_, g := drainUntil(t, p, ProtocolHTTP, 0, 3)
	if g.Requests != 3 || g.Errors != 3 || g.UpstreamErrors != 3 {
		t.Fatalf("stats %+v", g)
	}
}

// Response bodies stream: the client reads the first chunk while the app
// is still holding the rest back.
func TestHTTPProxyStreams(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	port := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second): // bound the handler if the test fails
		}
		io.WriteString(w, "second\n")
	}))
	p := newTestProxy(t, WithProtocol(ProtocolHTTP))
	if err := p.Point(context.Background(), Blue, port); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	close(release)
	if rest, err := io.ReadAll(r); err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// An Upgrade (websocket handshake) passes through; the upgraded
// connection is a byte pipe both ways; it counts as a request, untimed.
func TestHTTPProxyUpgrade(t *testing.T) {
	t.Parallel()
	port := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString("echo:" + line)
			rw.Flush()
		}
	}))
	p := newTestProxy(t, WithProtocol(ProtocolHTTP))
	if err := p.Point(context.Background(), Blue, port); err != nil {
		t.Fatal(err)
	}
	c := dialLine(t, p.Addr().String())
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	for _, msg := range []string{"one", "two"} {
		io.WriteString(c, msg+"\n")
		c.mustLine(t, "echo:"+msg)
	}
	c.Close()
	// The upgraded exchange is recorded when it ends.
	blue, _ := drainUntil(t, p, ProtocolHTTP, 1, 0)
	if blue.Requests != 1 || blue.Errors != 0 || blue.Latency.Count() != 0 {
		t.Fatalf("stats %+v", blue)
	}
}

// The TCP pipe counts connections, failed connects and connection
// durations per slot; the protocol switches in place for new connections.
func TestTCPProxyCountsAndSwitchesProtocol(t *testing.T) {
	t.Parallel()
	a := echoBackend(t, "A")
	p := newTestProxy(t)
	if err := p.Point(context.Background(), Blue, a); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c := dialLine(t, p.Addr().String())
		c.mustLine(t, "A")
		c.Close()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := p.Point(context.Background(), Green, dead); err != nil {
		t.Fatal(err)
	}
	c := dialLine(t, p.Addr().String())
	if _, err := c.line(); err == nil {
		t.Fatal("a connection to a dead slot got data")
	}
	blue, green := drainUntil(t, p, ProtocolTCP, 3, 1)
	if blue.Errors != 0 || blue.Latency.Count() != 3 || green.Errors != 1 || green.UpstreamErrors != 1 || green.Latency.Count() != 0 {
		t.Fatalf("blue %+v green %+v", blue, green)
	}
	if err := p.SetProtocol("udp"); err == nil {
		t.Fatal("SetProtocol accepted udp")
	}
	port := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") }))
	if err := p.SetProtocol(ProtocolHTTP); err != nil {
		t.Fatal(err)
	}
	if err := p.Point(context.Background(), Blue, port); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	drainUntil(t, p, ProtocolHTTP, 1, 0)
}
