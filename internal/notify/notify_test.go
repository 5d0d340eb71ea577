package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestSignAndVerify(t *testing.T) {
	secret := []byte("s3cret")
	ts := time.Unix(1_767_225_600, 0)
	body := []byte(`{"kind":"gate.failed"}`)
	sig := Sign(secret, ts, body)
	// HMAC-SHA256 of "1767225600." + body under "s3cret", computed with
	// openssl dgst -sha256 -hmac s3cret: what a receiver computes.
	if want := "sha256=a5b3c17a06dc317e90bff453b1458b4a84f500bd32adc499d6cc1d93b65979b3"; sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
	for name, ok := range map[string]bool{
		"good":          Verify(secret, "1767225600", sig, body),
		"other body":    !Verify(secret, "1767225600", sig, []byte(`{"kind":"gate.passed"}`)),
		"other time":    !Verify(secret, "1767225601", sig, body),
		"other secret":  !Verify([]byte("other"), "1767225600", sig, body),
		"bad timestamp": !Verify(secret, "yesterday", sig, body),
	} {
		if !ok {
			t.Errorf("%s: wrong answer", name)
		}
	}
}

func TestTargetMatches(t *testing.T) {
	ev := func(kind string, evidence map[string]string) *rollwavev1.Event {
		return &rollwavev1.Event{Kind: kind, Evidence: evidence}
	}
	isolated := ev("host.reverted", map[string]string{"isolated": "true"})
	ordered := ev("host.reverted", nil)
	cases := []struct {
		events []string
		e      *rollwavev1.Event
		want   bool
	}{
		{[]string{"gate.failed"}, ev("gate.failed", nil), true},
		{[]string{"gate.failed"}, ev("gate.passed", nil), false},
		{[]string{"release.*"}, ev("release.rolled_back", nil), true},
		// A family wildcard does not match a longer family name.
		{[]string{"host.*"}, ev("hosts.assigned", nil), false},
		{[]string{"*"}, ev("state.pruned", nil), true},
		// host.reverted_isolated selects only self-reverts.
		{[]string{"host.reverted_isolated"}, isolated, true},
		{[]string{"host.reverted_isolated"}, ordered, false},
		{[]string{"host.reverted"}, isolated, true},
	}
	for _, c := range cases {
		if got := (Target{Events: c.events}).Matches(c.e); got != c.want {
			t.Errorf("%v matches %s %v = %v, want %v", c.events, c.e.GetKind(), c.e.GetEvidence(), got, c.want)
		}
	}
}

func TestSlackText(t *testing.T) {
	p := payload("chat", "https://rollwave.example.com/", &rollwavev1.Event{
		Seq: 7, TimeUnixNano: 1, ReleaseId: "api-2.4.0", Kind: "gate.failed", Phase: 1,
		Message:  "max_cpu_percent: 97.5 > 90 <!channel>",
		Evidence: map[string]string{"gate": "max_cpu_percent", "value": "97.5", "limit": "90", "worst_host": "h2"},
	}, &rollwavev1.Release{Id: "api-2.4.0", State: rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
		Spec: &rollwavev1.ReleaseSpec{App: "api", Version: "2.4.0"}})
	got := SlackText(p)
	for _, want := range []string{
		":rotating_light:", "*api 2.4.0*", "release `api-2.4.0`", "*gate.failed* (phase 1)",
		"max_cpu_percent: 97.5 &gt; 90 &lt;!channel&gt;", // no mention can be smuggled in
		"[gate=max_cpu_percent, limit=90, value=97.5, worst_host=h2]",
		"<https://rollwave.example.com/ui/releases/api-2.4.0|open release>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("slack text\n%s\nlacks %q", got, want)
		}
	}
	b, err := body(spec.NotifySlack, p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil || m["text"] != got || len(m) != 1 {
		t.Fatalf("slack body %s: %v", b, err)
	}
	// Without ui_url, no link; a long evidence map is capped.
	ev := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		ev[k] = strings.Repeat("x", 200)
	}
	got = SlackText(payload("chat", "", &rollwavev1.Event{Kind: "release.succeeded", ReleaseId: "r", Evidence: ev}, nil))
	if strings.Contains(got, "open release") || !strings.Contains(got, "… 2 more") || !strings.HasPrefix(got, ":white_check_mark:") || len(got) > 1000 {
		t.Errorf("slack text %q", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com/services/…",
		"https://u:pw@h.example:8443/hook?token=abc":    "https://h.example:8443/hook?…",
		"http://127.0.0.1:9/":                           "http://127.0.0.1:9",
		"::":                                            "(unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// fsmWriter applies cursor commands to a real FSM, as the leader's Apply
// does; fail makes writes fail (a leader that lost quorum).
type fsmWriter struct {
	t    *testing.T
	mu   sync.Mutex
	f    *raftfsm.FSM
	fail bool
}

func (w *fsmWriter) apply(typ raftfsm.MessageType, m proto.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := raftfsm.Encode(typ, m)
	if err != nil {
		w.t.Fatal(err)
	}
	_, err = w.f.ApplyEntry(w.f.State().AppliedIndex()+1, data)
	return err
}

func (w *fsmWriter) SetNotifyCursors(_ context.Context, cmd *rollwavev1.SetNotifyCursorsCommand) error {
	w.mu.Lock()
	fail := w.fail
	w.mu.Unlock()
	if fail {
		return errors.New("no quorum")
	}
	return w.apply(raftfsm.SetNotifyCursors|raftfsm.IgnoreUnknownTypeFlag, cmd)
}

func (w *fsmWriter) events(kinds ...string) {
	var evs []*rollwavev1.Event
	for _, k := range kinds {
		evs = append(evs, &rollwavev1.Event{Kind: k, ReleaseId: "r1", Message: k})
	}
	if err := w.apply(raftfsm.AppendEvents, &rollwavev1.AppendEventsCommand{TimeUnixNano: time.Now().UnixNano(), Events: evs}); err != nil {
		w.t.Fatal(err)
	}
}

// receiver records requests; status decides each answer.
type receiver struct {
	mu     sync.Mutex
	got    []received
	status func(n int) int
}

type received struct {
	key, kind, ts, sig string
	body               []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, received{req.Header.Get(HeaderIdempotencyKey), req.Header.Get(HeaderEvent),
		req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), b})
	n := len(r.got)
	r.mu.Unlock()
	code := http.StatusOK
	if r.status != nil {
		code = r.status(n)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "nope")
}

func (r *receiver) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.got {
		out = append(out, g.kind)
	}
	return out
}

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.RetryMin, cfg.RetryMax, cfg.FlushInterval = 10*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond
	cfg.Targets = []Target{{Name: "ops", Type: spec.NotifyWebhook, URL: url, Events: []string{"gate.failed", "release.*"},
		Secret: []byte("k"), Timeout: 5 * time.Second}}
	return cfg
}

func TestDeliversSubscribedEventsInOrderAndRecordsTheCursor(t *testing.T) {
	// release.submitted is history: never sent to a new target.
	rcv, f, w, url := newHarness(t)
	// The first two attempts fail: the same event is retried, not skipped.
	rcv.status = func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	cfg := testConfig(url + "/hook/s3cr3t-path")
	cfg.Logger = testutil.Logger(t)
	n, err := New(cfg, f.State(), w)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(n)
	waitCursor(t, f)
	w.events("release.running", "phase.started", "gate.failed", "release.rolling_back", "gate.passed", "release.rolled_back")
	last := f.State().LastEvent().GetSeq()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		c := f.State().NotifyCursor("ops")
		return c.GetDeliveredSeq() == last, "cursor " + c.String()
	})
	stop()

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var kinds, keys []string
	for _, g := range rcv.got {
		kinds, keys = append(kinds, g.kind), append(keys, g.key)
		if !Verify([]byte("k"), g.ts, g.sig, g.body) {
			t.Errorf("signature of %s does not verify", g.kind)
		}
		var p Payload
		if err := json.Unmarshal(g.body, &p); err != nil || p.ID != g.key || p.Kind != g.kind || p.Release.GetID() != "r1" {
			t.Errorf("body %s: %v", g.body, err)
		}
	}
	want := "release.running release.running release.running gate.failed release.rolling_back release.rolled_back"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("received %v, want %s", kinds, want)
	}
	if keys[0] != keys[1] || keys[1] != keys[2] || keys[2] == keys[3] {
		t.Errorf("idempotency keys %v: a retry must keep its key, events must differ", keys)
	}
	st := n.Status()[0]
	if st.GetFailures() != 2 || st.GetDelivered() != 4 || st.GetLagEvents() != 0 || !strings.Contains(st.GetLastError(), "503") ||
		strings.Contains(st.GetLastError(), "s3cr3t") {
		t.Errorf("status %v", st)
	}
}

// GetID lets the test read a nil release.
func (r *PayloadRelease) GetID() string {
	if r == nil {
		return ""
	}
	return r.ID
}

func TestResumesFromTheRecordedCursorAndCountsPrunedEvents(t *testing.T) {
	rcv, f, w, url := newHarness(t)
	first := f.State().LastEvent().GetSeq()
	if err := w.SetNotifyCursors(context.Background(), &rollwavev1.SetNotifyCursorsCommand{TimeUnixNano: 1,
		Cursors: []*rollwavev1.NotifyCursor{{Target: "ops", DeliveredSeq: first}}}); err != nil {
		t.Fatal(err)
	}
	// Three events, then retention drops them all before a leader runs.
	w.events("release.running", "gate.failed", "release.paused")
	now := time.Now().UnixNano()
	if err := w.apply(raftfsm.Prune, &rollwavev1.PruneCommand{TimeUnixNano: now, EventsBeforeUnixNano: now}); err != nil {
		t.Fatal(err)
	}
	w.events("release.succeeded")
	n, err := New(testConfig(url), f.State(), w)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(n)
	last := f.State().LastEvent().GetSeq()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return f.State().NotifyCursor("ops").GetDeliveredSeq() == last, f.State().NotifyCursor("ops").String()
	})
	stop()
	if got := strings.Join(rcv.kinds(), " "); got != "release.succeeded" {
		t.Errorf("received %q", got)
	}
	c := f.State().NotifyCursor("ops")
	// release.submitted (before the cursor) and the three after it were
	// pruned; only the three after the cursor count as lost.
	if c.GetLostEvents() != 3 || !strings.Contains(c.GetLastLoss(), "3 event(s)") {
		t.Errorf("cursor %v", c)
	}
}

func TestCursorWritesFailAndAreRetried(t *testing.T) {
	rcv, f, w, url := newHarness(t)
	n, err := New(testConfig(url), f.State(), w)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(n)
	defer stop()
	waitCursor(t, f)
	w.setFail(true)
	w.events("release.running")
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return len(rcv.kinds()) == 1, "not delivered" })
	if st := n.Status()[0]; st.GetCursor() != f.State().LastEvent().GetSeq() {
		t.Errorf("status cursor %d, want this server's %d", st.GetCursor(), f.State().LastEvent().GetSeq())
	}
	w.setFail(false)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return f.State().NotifyCursor("ops").GetDeliveredSeq() == f.State().LastEvent().GetSeq(), "cursor not written after the failures"
	})
}

func TestConfigValidate(t *testing.T) {
	good := testConfig("https://h/x")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for want, mut := range map[string]func(*Config){
		"name is required":         func(c *Config) { c.Targets[0].Name = "" },
		"type must be":             func(c *Config) { c.Targets[0].Type = "email" },
		"url must be an http":      func(c *Config) { c.Targets[0].URL = "ftp://h/x" },
		"events must list":         func(c *Config) { c.Targets[0].Events = nil },
		"timeout must be positive": func(c *Config) { c.Targets[0].Timeout = 0 },
		"name defined twice":       func(c *Config) { c.Targets = append(c.Targets, c.Targets[0]) },
		"retry backoff must have":  func(c *Config) { c.RetryMax = c.RetryMin / 2 },
		"flush interval must be":   func(c *Config) { c.FlushInterval = 0 },
		"batch must be at least 1": func(c *Config) { c.Batch = 0 },
	} {
		c := testConfig("https://h/x")
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

// start runs n as one leadership term; stop ends the term and waits for it.
func start(n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	return func() { cancel(); <-done }
}

// A leader delivers but dies before its cursor reaches raft: the next
// leader (a new notifier over the same replicated state) sends those
// events again, in order, with the same idempotency keys.
func TestNextLeaderResendsFromTheRecordedCursorWithTheSameKeys(t *testing.T) {
	rcv, f, w, url := newHarness(t)
	first, err := New(testConfig(url), f.State(), w)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(first)
	waitCursor(t, f)
	w.setFail(true) // the leader loses quorum: no cursor entry commits
	w.events("release.running", "gate.failed")
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return len(rcv.kinds()) == 2, fmt.Sprint(rcv.kinds()) })
	stop()
	w.setFail(false)
	w.events("release.rolled_back")

	second, err := New(testConfig(url), f.State(), w)
	if err != nil {
		t.Fatal(err)
	}
	stop = start(second)
	defer stop()
	last := f.State().LastEvent().GetSeq()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return f.State().NotifyCursor("ops").GetDeliveredSeq() == last, f.State().NotifyCursor("ops").String()
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var kinds []string
	for _, g := range rcv.got {
		kinds = append(kinds, g.kind)
	}
	if got := strings.Join(kinds, " "); got != "release.running gate.failed release.running gate.failed release.rolled_back" {
		t.Fatalf("received %s", got)
	}
	if rcv.got[0].key != rcv.got[2].key || rcv.got[1].key != rcv.got[3].key || rcv.got[0].key == rcv.got[1].key {
		t.Errorf("resent events must keep their keys: %v %v %v %v", rcv.got[0].key, rcv.got[1].key, rcv.got[2].key, rcv.got[3].key)
	}
}

// newHarness starts a receiver and an FSM holding one event (history a new
// target never gets); w applies to the FSM.
func newHarness(t *testing.T) (rcv *receiver, f *raftfsm.FSM, w *fsmWriter, url string) {
	rcv = &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	f = raftfsm.New(testutil.Logger(t))
	w = &fsmWriter{t: t, f: f}
	w.events("release.submitted")
	return rcv, f, w, srv.URL
}

func (w *fsmWriter) setFail(fail bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = fail
}

// waitCursor waits for the target's first cursor (Run has started).
func waitCursor(t *testing.T, f *raftfsm.FSM) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { return f.State().NotifyCursor("ops") != nil, "no cursor" })
}

func TestTargetStringHidesTheSecretAndTheURLPath(t *testing.T) {
	tg := Target{Name: "chat", Type: spec.NotifySlack, URL: "https://hooks.slack.com/services/T0/B0/tok3n", Events: []string{"*"}, Secret: []byte("hmac-s3cret")}
	for _, s := range []string{tg.String(), fmt.Sprintf("%v", tg), fmt.Sprintf("%+v", []Target{tg}), tg.LogValue().String()} {
		if strings.Contains(s, "s3cret") || strings.Contains(s, "tok3n") || !strings.Contains(s, "hooks.slack.com/services/…") {
			t.Errorf("target shown as %q", s)
		}
	}
}
