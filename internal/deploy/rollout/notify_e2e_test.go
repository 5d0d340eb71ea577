package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/notify"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// hookReceiver is a real HTTP receiver on a loopback address of its own
// (127.0.X.1, X taken from netOctet, so no other test can own it): it
// records every request, and can go down (its listener closed: the
// sender gets connection refused) and come back on the same address.
type hookReceiver struct {
	t      *testing.T
	addr   string
	secret []byte

	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
	got  []hookRequest
}

type hookRequest struct {
	key, ts, sig string
	body         []byte
	p            notify.Payload
}

func newHookReceiver(t *testing.T, secret []byte) *hookReceiver {
	r := &hookReceiver{t: t, secret: secret}
	r.up(fmt.Sprintf("127.0.%d.1:0", netOctet.Add(1)))
	t.Cleanup(r.down)
	return r
}

// up listens on addr (the first time with port 0, then the same address
// again) and serves.
func (r *hookReceiver) up(addr string) {
	r.t.Helper()
	var ln net.Listener
	// The address is this test's own; a reused port may linger a moment.
	testutil.WaitFor(r.t, 10*time.Second, func() (bool, string) {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil, fmt.Sprintf("listen %s: %v", addr, err)
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	r.done = make(chan struct{})
	srv, done := r.srv, r.done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// down closes the listener and every connection: from now on the sender
// is refused.
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv, done := r.srv, r.done
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/rollwave/hook" }

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hr := hookRequest{key: req.Header.Get(notify.HeaderIdempotencyKey), ts: req.Header.Get(notify.HeaderTimestamp),
		sig: req.Header.Get(notify.HeaderSignature), body: b}
	if err := json.Unmarshal(b, &hr.p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, hr)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// check verifies every request received so far: each signature holds,
// each idempotency key names one event (a resend carries the key of the
// first send, and the same event), and first arrivals come in seq order.
// It returns the seqs of the release's events in order of first arrival,
// and how many requests were duplicates.
func (r *hookReceiver) check(release string) (firsts []uint64, dups int) {
	r.t.Helper()
	byKey := map[string]hookRequest{}
	var last uint64
	for _, g := range r.requests() {
		if !notify.Verify(r.secret, g.ts, g.sig, g.body) {
			r.t.Errorf("signature of %s (%s) does not verify", g.key, g.p.Kind)
		}
		if g.key != g.p.ID || g.key != notify.IdempotencyKey(&v1.Event{Seq: g.p.Seq, TimeUnixNano: g.p.Time.UnixNano()}) {
			r.t.Errorf("idempotency key %q does not name the event it came with (%d %s)", g.key, g.p.Seq, g.p.Kind)
		}
		if prev, seen := byKey[g.key]; seen {
			if prev.p.Seq != g.p.Seq || prev.p.Kind != g.p.Kind || prev.p.Message != g.p.Message {
				r.t.Errorf("key %s sent for two events: %d %s and %d %s", g.key, prev.p.Seq, prev.p.Kind, g.p.Seq, g.p.Kind)
			}
			dups++
			continue
		}
		byKey[g.key] = g
		if g.p.Seq <= last {
			r.t.Errorf("event %d (%s) first arrived after event %d: out of order", g.p.Seq, g.p.Kind, last)
		}
		last = g.p.Seq
		if g.p.Release != nil && g.p.Release.ID == release {
			firsts = append(firsts, g.p.Seq)
		}
	}
	return firsts, dups
}

// subscribed lists the seqs of the release's events the target takes, as
// raft has them.
func subscribed(s *coordinator.Server, target notify.Target, release string) []uint64 {
	var out []uint64
	for _, e := range s.FSM().State().Events(release, 0, 0) {
		if target.Matches(e) {
			out = append(out, e.GetSeq())
		}
	}
	return out
}

// TestE2ENotifyWebhookAtLeastOnceAcrossOutageAndFailover (issue 15 item
// 2): a real local HTTP receiver gets every subscribed event of a release
// in order; then, with the receiver down for 20 s and the leader killed
// during that time, it still gets each event of the next release: none
// lost, duplicates carry the same idempotency key, signatures verify.
func TestE2ENotifyWebhookAtLeastOnceAcrossOutageAndFailover(t *testing.T) {
	secret := []byte("notify-test-secret")
	rcv := newHookReceiver(t, secret)
	target := notify.Target{Name: "ops", Type: spec.NotifyWebhook, URL: rcv.url(),
		Events: []string{"release.*", "phase.*", "gate.*", "host.reverted_isolated"}, Secret: secret, Timeout: 5 * time.Second}
	f := newFleetOf(t, 3, 2, func(_ int, c *coordinator.Config) {
		c.Notify.Targets = []notify.Target{target}
		c.Notify.UIURL = "https://rollwave.example.com"
		// Short waits so the test does not idle; production caps at 30s.
		c.Notify.RetryMin, c.Notify.RetryMax, c.Notify.FlushInterval = 50*time.Millisecond, time.Second, 100*time.Millisecond
	})

	waitAll := func(release string, within time.Duration) {
		t.Helper()
		testutil.WaitFor(t, within, func() (bool, string) {
			want := subscribed(f.leader(), target, release)
			firsts, _ := rcv.check(release)
			if len(want) == 0 || !slices.Equal(firsts, want) {
				return false, fmt.Sprintf("%s: received %v, want %v", release, firsts, want)
			}
			return true, ""
		})
	}

	// 1. A release; every subscribed event arrives once, in order.
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	waitAll("demo-1", 30*time.Second)
	firsts, dups := rcv.check("demo-1")
	kinds := map[string]bool{}
	for _, g := range rcv.requests() {
		kinds[g.p.Kind] = true
		if g.p.Release == nil || g.p.Release.URL != "https://rollwave.example.com/ui/releases/demo-1" || g.p.Release.App != "demo" {
			t.Errorf("release context %+v", g.p.Release)
		}
	}
	for _, k := range []string{"release.running", "phase.started", "gate.passed", "phase.verified", "release.succeeded"} {
		if !kinds[k] {
			t.Errorf("no %s event received; got %v", k, kinds)
		}
	}
	if kinds["hosts.assigned"] || kinds["host.switched"] {
		t.Errorf("unsubscribed events received: %v", kinds)
	}
	t.Logf("demo-1: %d subscribed events received in order, %d duplicates", len(firsts), dups)

	// 2. The receiver goes down for 20s; meanwhile the next release runs
	// and its leader is killed. Every event still arrives.
	rcv.down()
	downAt := time.Now()
	before := len(rcv.requests())
	f.start("demo-2", "2.0.0", specOpts{bake: "2s"})
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := f.release("demo-2")
		return r.GetCurrentPhase() >= 1, fmt.Sprintf("demo-2 in phase %d (%s)", r.GetCurrentPhase(), r.GetState())
	})
	old := f.c.Index(f.leader())
	f.c.Kill(old)
	killedAt := time.Now()
	nl := f.c.Leader(20 * time.Second)
	t.Logf("receiver down; leader %s killed %.1fs later; %s leads", f.c.Configs[old].NodeID, killedAt.Sub(downAt).Seconds(), nl.NodeID())
	if got := len(rcv.requests()); got != before {
		t.Fatalf("%d requests arrived while the receiver was down", got-before)
	}
	// The new leader keeps trying: its failures show in notify status,
	// asked of a follower (forwarded to the leader).
	var follower *coordinator.Server
	for _, s := range f.c.Running() {
		if s != nl {
			follower = s
		}
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		resp, err := f.c.Client(follower).NotifyStatus(ctxT(t), &v1.NotifyStatusRequest{})
		if err != nil {
			return false, err.Error()
		}
		st := resp.GetTargets()[0]
		ok := resp.GetLeaderId() == nl.NodeID() && st.GetFailures() > 0 && strings.Contains(st.GetLastError(), "connection refused") &&
			!strings.Contains(st.GetLastError(), "/hook") && st.GetLagEvents() > 0
		return ok, fmt.Sprintf("status %v", resp)
	})
	if wait := 20*time.Second - time.Since(downAt); wait > 0 {
		// The outage's length is the scenario, not a synchronisation.
		time.Sleep(wait)
	}
	rcv.up(strings.TrimPrefix(strings.TrimSuffix(rcv.url(), "/rollwave/hook"), "http://"))
	t.Logf("receiver back after %.1fs", time.Since(downAt).Seconds())
	f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	waitAll("demo-2", 60*time.Second)
	firsts, dups = rcv.check("demo-2")
	t.Logf("demo-2: %d subscribed events received in order after the outage and failover, %d duplicates (same keys)", len(firsts), dups)

	// The cursor in raft catches up with the newest event; status agrees.
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		l := f.leader()
		last := l.FSM().State().LastEvent().GetSeq()
		c := l.FSM().State().NotifyCursor("ops")
		resp, err := f.c.Client(l).NotifyStatus(ctxT(t), &v1.NotifyStatusRequest{})
		if err != nil {
			return false, err.Error()
		}
		st := resp.GetTargets()[0]
		return c.GetDeliveredSeq() == last && st.GetLagEvents() == 0 && st.GetLostEvents() == 0,
			fmt.Sprintf("cursor %v, last event %d, status %v", c, last, st)
	})
	// And /metrics shows the target.
	resp, err := httpGet(t, "http://"+f.leader().HTTPAddr()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`rollwave_notify_delivered_total{target="ops"}`, `rollwave_notify_lag_events{target="ops"} 0`, `rollwave_notify_failures_total{target="ops"}`} {
		if !strings.Contains(resp, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func httpGet(t *testing.T, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}
