package slot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Any 100 consecutive non-sticky choices send exactly weight of them to
// the new slot, so the share over 10,000 is exact for every weight.
func TestPickerShare(t *testing.T) {
	t.Parallel()
	for _, w := range []int{1, 5, 10, 25, 50, 99} {
		var p picker
		r := &route{b: &backend{slot: Green}, old: &backend{slot: Blue}, weight: w}
		got, run := 0, 0
		for i := range 10_000 {
			if r.choose(p.next()) == r.b {
				got++
				run++
			}
			if i%100 == 99 {
				if run != w {
					t.Fatalf("weight %d: %d new-slot choices in requests %d..%d, want exactly %d", w, run, i-99, i, w)
				}
				run = 0
			}
		}
		if got != 100*w {
			t.Fatalf("weight %d: %d of 10000 to the new slot", w, got)
		}
	}
}

// A sticky client moves to the new slot once, when the weight passes its
// bucket, and never back while the weight rises; buckets spread over
// clients so the share of clients follows the weight.
func TestStickyBucketsAreMonotonic(t *testing.T) {
	t.Parallel()
	steps := []int{1, 10, 50, 100}
	onNew := make([]int, len(steps))
	for i := range 2000 {
		addr := fmt.Sprintf("10.%d.%d.%d:%d", i/65536, (i/256)%256, i%256, 40000+i%1000)
		b := ipBucket(addr)
		if b2 := ipBucket(fmt.Sprintf("10.%d.%d.%d:1", i/65536, (i/256)%256, i%256)); b2 != b {
			t.Fatalf("%s: bucket %d depends on the port (%d)", addr, b, b2)
		}
		moved := false
		for j, w := range steps {
			r := &route{b: &backend{slot: Green}, old: &backend{slot: Blue}, weight: w, sticky: StickyClientIP}
			if w == 100 {
				r.old = nil
			}
			isNew := r.choose(b) == r.b
			if moved && !isNew {
				t.Fatalf("client %s went back to the old slot at weight %d", addr, w)
			}
			if isNew {
				moved = true
				onNew[j]++
			}
		}
	}
	for j, w := range steps {
		share := float64(onNew[j]) / 20
		if share < float64(w)-5 || share > float64(w)+5 {
			t.Errorf("weight %d: %.1f%% of 2000 clients on the new slot", w, share)
		}
	}
}

func TestWeightingValidate(t *testing.T) {
	t.Parallel()
	bad := []Weighting{
		{Old: Blue, OldPort: 1, Weight: -1},
		{Old: Blue, OldPort: 1, Weight: 101},
		{Old: "red", OldPort: 1, Weight: 5},
		{Old: Blue, OldPort: 0, Weight: 5},
		{Old: Blue, OldPort: 1, Weight: 5, Sticky: "session"},
	}
	for _, w := range bad {
		if err := w.Validate(); !errors.Is(err, ErrSwitch) {
			t.Errorf("%+v: %v", w, err)
		}
	}
	p := newTestProxy(t) // tcp
	if err := p.PointWeighted(context.Background(), Green, 2, Weighting{Old: Blue, OldPort: 1, Weight: 5, Sticky: StickyCookie}); err == nil {
		t.Fatal("a tcp proxy accepted cookie stickiness")
	}
	if _, ok := p.Current(); ok {
		t.Fatal("a refused weighting changed the switch")
	}
}

// The HTTP proxy sends the weight's share of requests to the new slot;
// with cookie stickiness each client stays on one slot per step and once
// moved never goes back; weight 0 and Point end the split at once.
func TestHTTPProxyWeighted(t *testing.T) {
	t.Parallel()
	a := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "A") }))
	b := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "B") }))
	p := newTestProxy(t, WithProtocol(ProtocolHTTP))
	ctx := context.Background()
	if err := p.Point(ctx, Blue, a); err != nil {
		t.Fatal(err)
	}
	get := func(cl *http.Client) string {
		t.Helper()
		resp, err := cl.Get("http://" + p.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, w := range []int{1, 10, 50} {
		if err := p.PointWeighted(ctx, Green, b, Weighting{Old: Blue, OldPort: a, Weight: w}); err != nil {
			t.Fatal(err)
		}
		if p.Weight() != w {
			t.Fatalf("Weight() = %d, want %d", p.Weight(), w)
		}
		nb := 0
		for range 500 {
			if get(plain) == "B" {
				nb++
			}
		}
		if share := float64(nb) / 5; share < float64(w)-2 || share > float64(w)+2 {
			t.Fatalf("weight %d: %.1f%% of 500 requests to the new slot", w, share)
		}
	}
	// Cookie stickiness: 100 clients, each with its own jar.
	clients := make([]*http.Client, 100)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Timeout: 5 * time.Second, Jar: jar}
	}
	moved := make([]bool, len(clients))
	for _, w := range []int{10, 50} {
		if err := p.PointWeighted(ctx, Green, b, Weighting{Old: Blue, OldPort: a, Weight: w, Sticky: StickyCookie}); err != nil {
			t.Fatal(err)
		}
		onNew := 0
		for i, cl := range clients {
			first := get(cl)
			for range 4 {
				if got := get(cl); got != first {
					t.Fatalf("weight %d: client %d saw %s then %s", w, i, first, got)
				}
			}
			if moved[i] && first != "B" {
				t.Fatalf("weight %d: client %d went back to the old version", w, i)
			}
			if first == "B" {
				moved[i] = true
				onNew++
			}
		}
		if onNew < w-10 || onNew > w+10 {
			t.Errorf("weight %d: %d of 100 sticky clients on the new slot", w, onNew)
		}
	}
	// A failed step: weight 0 sends everything back at once.
	if err := p.PointWeighted(ctx, Green, b, Weighting{Old: Blue, OldPort: a, Weight: 0}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if got := get(clients[0]); got != "A" {
			t.Fatalf("after weight 0: %s", got)
		}
	}
	if cur, _ := p.Current(); cur != Blue || p.Weight() != 100 {
		t.Fatalf("after weight 0: current %s weight %d", cur, p.Weight())
	}
}

// TCP: new connections are weighted; with client_ip stickiness one source
// address always lands on the same slot.
func TestTCPProxyWeighted(t *testing.T) {
	t.Parallel()
	a, b := echoBackend(t, "A"), echoBackend(t, "B")
	p := newTestProxy(t)
	ctx := context.Background()
	if err := p.PointWeighted(ctx, Green, b, Weighting{Old: Blue, OldPort: a, Weight: 25}); err != nil {
		t.Fatal(err)
	}
	nb := 0
	for range 200 {
		c := dialLine(t, p.Addr().String())
		if whichEcho(t, c) == "B" {
			nb++
		}
		c.Close()
	}
	if nb < 46 || nb > 54 {
		t.Fatalf("weight 25: %d of 200 connections to the new slot", nb)
	}
	if err := p.PointWeighted(ctx, Green, b, Weighting{Old: Blue, OldPort: a, Weight: 50, Sticky: StickyClientIP}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))}
		var seen string
		for range 3 {
			c, err := (&net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}).Dial("tcp", p.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			got := whichEcho(t, &lineConn{Conn: c, r: bufio.NewReader(c)})
			c.Close()
			if seen != "" && got != seen {
				t.Fatalf("client %s saw %s then %s", src.IP, seen, got)
			}
			seen = got
		}
	}
}

// whichEcho asks an echoBackend through c for its name.
func whichEcho(t *testing.T, c *lineConn) string {
	t.Helper()
	if _, err := io.WriteString(c, "x\n"); err != nil {
		t.Fatal(err)
	}
	got, err := c.line()
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(got, ":")
	return name
}

// The exec hook gets the weight and both slots, as placeholders and in
// its environment.
func TestExecSwitchWeighted(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "lb")
	s, err := NewExecSwitch([]string{"sh", "-c", `echo "$1 $2 $3 $4 $5 $ROLLWAVE_WEIGHT $ROLLWAVE_OLD_PORT" > "$6"`, "hook",
		"{{slot}}", "{{port}}", "{{weight}}", "{{old_slot}}", "{{old_port}}", out})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func() string {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if err := s.PointWeighted(ctx, Green, 8082, Weighting{Old: Blue, OldPort: 8081, Weight: 10}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "green 8082 10 blue 8081 10 8081" {
		t.Fatalf("hook got %q", got)
	}
	if cur, _ := s.Current(); cur != Green {
		t.Fatalf("current %s", cur)
	}
	if err := s.PointWeighted(ctx, Green, 8082, Weighting{Old: Blue, OldPort: 8081, Weight: 0}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "green 8082 0 blue 8081 0 8081" {
		t.Fatalf("hook got %q", got)
	}
	if cur, _ := s.Current(); cur != Blue {
		t.Fatalf("after weight 0, current %s", cur)
	}
	if err := s.Point(ctx, Blue, 8081); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "blue 8081 100  0 100 0" {
		t.Fatalf("plain switch: hook got %q", got)
	}
}
