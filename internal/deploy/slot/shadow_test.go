package slot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// shadowPeer is a backend that records what reaches it.
type shadowPeer struct {
	mu       sync.Mutex
	requests int
	mirrored int
	bodies   [][]byte
	hosts    []string
}

func (s *shadowPeer) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Header.Get(ShadowHeader) != "" {
		s.mirrored++
	}
	if len(b) > 0 {
		s.bodies = append(s.bodies, b)
	}
	s.hosts = append(s.hosts, r.Host)
}

func (s *shadowPeer) counts() (requests, mirrored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.mirrored
}

// darkProxy is an HTTP proxy in a dark phase: every request to old (blue),
// sample of them mirrored to new (green).
func darkProxy(t *testing.T, oldH, newH http.Handler, sh *Shadow) *Proxy {
	t.Helper()
	oldPort, newPort := httpBackend(t, oldH), httpBackend(t, newH)
	p, err := NewProxy("127.0.0.1:0", testutil.Logger(t), WithProtocol(ProtocolHTTP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.PointWeighted(context.Background(), Green, newPort, Weighting{Old: Blue, OldPort: oldPort, Weight: 0, Shadow: sh}); err != nil {
		t.Fatal(err)
	}
	return p
}

// shadowUntil adds up the mirror's stats until cond holds.
func shadowUntil(t *testing.T, p *Proxy, cond func(*ShadowStats) bool) ShadowStats {
	t.Helper()
	var sum ShadowStats
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		s, ok := p.DrainShadowStats()
		if !ok {
			return false, "no mirror runs"
		}
		sum.Merge(&s)
		return cond(&sum), fmt.Sprintf("live %d, shadow %d (%d errors), dropped %d", sum.Live.Requests, sum.Shadow.Requests, sum.Shadow.Errors, sum.Dropped)
	})
	return sum
}

func do(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
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

// During a dark phase every user request is answered by the old slot;
// the new slot only ever sees the mirrored sample (exactly the sample's
// share, marked with ShadowHeader), with the same bodies. Methods not
// listed, bodies over ShadowMaxBody and requests that try to reach
// elsewhere (Host header, HTTP_PROXY) go nowhere but where they should.
func TestShadowMirrorsSampleOnly(t *testing.T) {
	// Not parallel: HTTP_PROXY must not be honoured by the mirror.
	trap := &shadowPeer{}
	trapPort := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { trap.record(r) }))
	t.Setenv("HTTP_PROXY", fmt.Sprintf("http://127.0.0.1:%d", trapPort))
	t.Setenv("http_proxy", fmt.Sprintf("http://127.0.0.1:%d", trapPort))

	old, nw := &shadowPeer{}, &shadowPeer{}
	p := darkProxy(t,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { old.record(r); io.WriteString(w, "old") }),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { nw.record(r); io.WriteString(w, "new") }),
		&Shadow{Sample: 0.25, Methods: []string{"GET", "POST"}})
	url := "http://" + p.Addr().String()
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}

	const n = 400
	for i := range n {
		if code, body := do(t, c, "GET", fmt.Sprintf("%s/item/%d", url, i), "", map[string]string{"Host": "evil.example:25"}); code != 200 || body != "old" {
			t.Fatalf("user request %d answered %d %q: users must only ever see the old slot", i, code, body)
		}
	}
	sum := shadowUntil(t, p, func(s *ShadowStats) bool { return s.Shadow.Requests >= n/4 })
	if sum.Shadow.Requests != n/4 || sum.Live.Requests != n/4 || sum.Shadow.Errors != 0 || sum.Mismatched != 0 {
		t.Fatalf("shadow stats %+v, want exactly %d compared requests with no errors", sum, n/4)
	}
	if req, mir := nw.counts(); req != n/4 || mir != n/4 {
		t.Fatalf("new slot saw %d requests (%d marked mirrored), want %d, all mirrored", req, mir, n/4)
	}
	if req, _ := old.counts(); req != n {
		t.Fatalf("old slot saw %d requests, want all %d", req, n)
	}

	// Bodies: a small one is mirrored byte for byte, one over the cap is
	// not, and a method not listed is not.
	small := strings.Repeat("a", 1000)
	for range 4 { // one in four is sampled
		do(t, c, "POST", url+"/small", small, nil)
	}
	big := strings.Repeat("b", ShadowMaxBody+1)
	for range 4 {
		do(t, c, "POST", url+"/big", big, nil)
	}
	for range 8 {
		do(t, c, "PUT", url+"/put", "x", nil)
	}
	for range 4 {
		do(t, c, "GET", url+"/fat", "", map[string]string{"X-Fat": strings.Repeat("h", shadowMaxHeader)})
	}
	sum = shadowUntil(t, p, func(s *ShadowStats) bool { return s.Shadow.Requests >= 1 && s.Dropped >= 2 })
	if sum.Shadow.Requests != 1 || sum.Dropped != 2 {
		t.Fatalf("after the bodies: %+v, want 1 mirrored (small body) and 2 dropped (big body, big header)", sum)
	}
	nw.mu.Lock()
	bodies, hosts := nw.bodies, nw.hosts
	nw.mu.Unlock()
	if len(bodies) != 1 || !bytes.Equal(bodies[0], []byte(small)) {
		t.Fatalf("new slot got bodies of sizes %v, want one copy of the %d-byte body", lens(bodies), len(small))
	}
	if hosts[0] != "evil.example:25" {
		t.Fatalf("mirrored Host %q: the app should see the name clients used", hosts[0])
	}
	// A client cannot pass its request off as a copy.
	do(t, c, "GET", url+"/forged", "", map[string]string{ShadowHeader: "1"})
	if _, mir := old.counts(); mir != 0 {
		t.Fatalf("%d user requests reached the old slot marked %s", mir, ShadowHeader)
	}
	if req, _ := trap.counts(); req != 0 {
		t.Fatalf("%d mirrored requests went to HTTP_PROXY", req)
	}
}

func lens(bs [][]byte) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = len(b)
	}
	return out
}

// A new slot answering 500 to the mirror: every comparison counts an
// error on the new side and none on the live side; users see only 200s.
func TestShadowComparesErrors(t *testing.T) {
	t.Parallel()
	p := darkProxy(t,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", 500) }),
		&Shadow{Sample: 1, Methods: []string{"GET"}})
	c := &http.Client{}
	for i := range 50 {
		if code, _ := do(t, c, "GET", "http://"+p.Addr().String()+"/", "", nil); code != 200 {
			t.Fatalf("user request %d answered %d", i, code)
		}
	}
	sum := shadowUntil(t, p, func(s *ShadowStats) bool { return s.Shadow.Requests >= 50 })
	if sum.Shadow.Errors != 50 || sum.Live.Errors != 0 || sum.Mismatched != 50 || sum.Live.Latency.Count() != 50 {
		t.Fatalf("stats %+v, want 50 new-slot errors, 0 live errors, 50 mismatches", sum)
	}
}

// A new slot that never answers cannot hold more than shadowMaxInFlight
// copies, never delays a user, and its copies end when the dark phase
// does (the route changes).
func TestShadowSlowNewSlotIsBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var in, maxIn atomic.Int64
	p := darkProxy(t,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := in.Add(1)
			defer in.Add(-1)
			for {
				m := maxIn.Load()
				if n <= m || maxIn.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}),
		&Shadow{Sample: 1, Methods: []string{"GET"}})
	defer close(release)
	c := &http.Client{Timeout: 30 * time.Second}
	const n = 200
	for i := range n {
		// Each user request completes although every copy hangs: a
		// blocked mirror would make this loop time out.
		if code, _ := do(t, c, "GET", "http://"+p.Addr().String()+"/", "", nil); code != 200 {
			t.Fatalf("user request %d answered %d", i, code)
		}
	}
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return in.Load() == shadowMaxInFlight, fmt.Sprintf("%d copies at the new slot, want the cap %d", in.Load(), shadowMaxInFlight)
	})
	s, _ := p.DrainShadowStats()
	if s.Dropped < n-shadowMaxInFlight {
		t.Fatalf("dropped %d copies, want at least %d (the rest of %d)", s.Dropped, n-shadowMaxInFlight, n)
	}
	if maxIn.Load() > shadowMaxInFlight {
		t.Fatalf("%d copies at once, cap %d", maxIn.Load(), shadowMaxInFlight)
	}
	// The dark phase ends (traffic to the old slot only): copies stop.
	if err := p.Point(context.Background(), Blue, 1); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return in.Load() == 0, fmt.Sprintf("%d copies still held at the new slot", in.Load())
	})
}

func TestShadowWeightingValidate(t *testing.T) {
	t.Parallel()
	for _, w := range []Weighting{
		{Old: Blue, OldPort: 1, Weight: 10, Shadow: &Shadow{Sample: 0.1, Methods: []string{"GET"}}},
		{Old: Blue, OldPort: 1, Weight: 0, Shadow: &Shadow{Sample: 0, Methods: []string{"GET"}}},
		{Old: Blue, OldPort: 1, Weight: 0, Shadow: &Shadow{Sample: 0.5}},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v (shadow %+v): no error", w, *w.Shadow)
		}
	}
	// Over TCP there is nothing to mirror.
	p, err := NewProxy("127.0.0.1:0", testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.PointWeighted(context.Background(), Green, 2, Weighting{Old: Blue, OldPort: 1, Shadow: &Shadow{Sample: 1, Methods: []string{"GET"}}}); err == nil {
		t.Fatal("a tcp proxy accepted shadow traffic")
	}
}
