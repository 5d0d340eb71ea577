// Package notify delivers the audit log to webhooks and Slack: the
// leader's notification sender. Each target has a delivery cursor in raft
// (raftfsm.SetNotifyCursors): the seq up to which every event was
// delivered, was not subscribed, or was lost to retention. While a server
// leads, one goroutine per target reads the events after its cursor in seq
// order and POSTs each subscribed one until the target answers 2xx,
// retrying with capped, jittered backoff; cursor moves are batched into
// raft. A new leader resends from the recorded cursor, so delivery is at
// least once and in order per target, and a resent event carries the same
// Idempotency-Key.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Target is one destination (a server config notify "NAME" block).
type Target struct {
	// Name names the target's cursor in raft.
	Name string
	// Type is spec.NotifyWebhook or spec.NotifySlack.
	Type string
	// URL receives a POST per event.
	URL string
	// Events select what is sent: kinds, "family.*", "*", and
	// "host.reverted_isolated" (host.reverted events with evidence
	// isolated=true). Checked by spec.
	Events []string
	// Secret is the HMAC-SHA256 key; nil sends unsigned requests.
	Secret []byte
	// Timeout bounds one request.
	Timeout time.Duration
}

// String shows the target without its secret and with its URL redacted,
// so printing a config never leaks either.
func (t Target) String() string {
	return fmt.Sprintf("notify %q (%s %s, events %s, signed %v)", t.Name, t.Type, RedactURL(t.URL), strings.Join(t.Events, ","), len(t.Secret) > 0)
}

// LogValue is String for slog.
func (t Target) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Matches reports whether the target subscribes to e.
func (t Target) Matches(e *rollwavev1.Event) bool {
	for _, s := range t.Events {
		switch {
		case s == "*", s == e.GetKind():
			return true
		case s == "host.reverted_isolated":
			if e.GetKind() == "host.reverted" && e.GetEvidence()["isolated"] == "true" {
				return true
			}
		case strings.HasSuffix(s, ".*"):
			if strings.HasPrefix(e.GetKind(), strings.TrimSuffix(s, "*")) {
				return true
			}
		}
	}
	return false
}

// Config configures the notifier.
type Config struct {
	// Targets are the destinations; none turns the notifier off.
	Targets []Target
	// UIURL is the dashboard's public address; releases link to
	// <UIURL>/ui/releases/<id>. Empty: no links.
	UIURL string
	// FlushInterval is the least time between two cursor entries: cursor
	// moves in between are batched into one. Events delivered after the
	// last entry are sent again by the next leader.
	FlushInterval time.Duration
	// RetryMin and RetryMax bound the backoff (full jitter) between
	// attempts to deliver one event, and between failed cursor writes.
	RetryMin, RetryMax time.Duration
	// Batch is how many events one read of the log takes.
	Batch int
	// UserAgent is sent with every request.
	UserAgent string
	// Transport replaces the HTTP transport (tests); nil uses one with
	// connect, TLS handshake and idle timeouts.
	Transport http.RoundTripper
	// Logger receives the notifier's logs; nil discards them. Secrets and
	// full target URLs are never logged.
	Logger *slog.Logger
}

// DefaultConfig returns production settings without targets.
func DefaultConfig() Config {
	return Config{
		FlushInterval: 250 * time.Millisecond,
		RetryMin:      500 * time.Millisecond,
		RetryMax:      30 * time.Second,
		Batch:         256,
		UserAgent:     "rollwave-notify",
	}
}

// Validate reports the first problem, naming the target and field.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, t := range c.Targets {
		at := fmt.Sprintf("notify[%d] %q", i, t.Name)
		u, err := url.Parse(t.URL)
		switch {
		case t.Name == "":
			return fmt.Errorf("notify[%d]: name is required", i)
		case seen[t.Name]:
			return fmt.Errorf("%s: name defined twice", at)
		case t.Type != spec.NotifyWebhook && t.Type != spec.NotifySlack:
			return fmt.Errorf("%s: type must be %s or %s, got %q", at, spec.NotifyWebhook, spec.NotifySlack, t.Type)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return fmt.Errorf("%s: url must be an http:// or https:// URL with a host, got %s", at, RedactURL(t.URL))
		case len(t.Events) == 0:
			return fmt.Errorf("%s: events must list at least one event", at)
		case t.Timeout <= 0:
			return fmt.Errorf("%s: timeout must be positive, got %s", at, t.Timeout)
		}
		seen[t.Name] = true
	}
	switch {
	case c.FlushInterval <= 0:
		return fmt.Errorf("notify flush interval must be positive, got %s", c.FlushInterval)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("notify retry backoff must have 0 < min <= max, got %s and %s", c.RetryMin, c.RetryMax)
	case c.Batch < 1:
		return fmt.Errorf("notify batch must be at least 1, got %d", c.Batch)
	}
	return nil
}

// Writer records cursor moves: one raft entry per call (the leader's
// Apply of raftfsm.SetNotifyCursors). It may block up to the apply
// timeout.
type Writer interface {
	SetNotifyCursors(ctx context.Context, cmd *rollwavev1.SetNotifyCursorsCommand) error
}

// Notifier sends the audit log to the configured targets while Run runs
// (the leader's term). It lives as long as the server; its counters too.
type Notifier struct {
	cfg     Config
	state   *raftfsm.State
	w       Writer
	log     *slog.Logger
	client  *http.Client
	targets []*target
}

// target is a Target with what this server saw of its deliveries.
type target struct {
	Target

	mu sync.Mutex
	// running: a Run of this server is delivering to it; cursor is then
	// where it got (ahead of raft's until the next flush).
	running                       bool
	cursor                        uint64
	attempts, failures, delivered uint64
	lost                          uint64
	lastLoss                      string
	lastSuccess, lastErrorAt      time.Time
	lastError                     string
}

// New returns a notifier over the replicated state. It starts nothing.
func New(cfg Config, state *raftfsm.State, w Writer) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	n := &Notifier{
		cfg: cfg, state: state, w: w, log: log.With("component", "notify"),
		// A redirect is an answer, not a 2xx: it is retried and shown as
		// the last error rather than followed somewhere unconfigured.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	for _, t := range cfg.Targets {
		n.targets = append(n.targets, &target{Target: t})
	}
	return n, nil
}

// Enabled reports whether any target is configured.
func (n *Notifier) Enabled() bool { return len(n.targets) > 0 }

// term is one Run: the cursor moves waiting to be written.
type term struct {
	mu      sync.Mutex
	pending map[string]*rollwavev1.NotifyCursor
	wake    chan struct{}
}

// Run delivers until ctx ends (the leadership term ends), then returns
// once every goroutine it started has. The state must be current (the
// leader's barrier passed) when it starts.
func (n *Notifier) Run(ctx context.Context) {
	if !n.Enabled() {
		return
	}
	if !n.initCursors(ctx) {
		return
	}
	tm := &term{pending: map[string]*rollwavev1.NotifyCursor{}, wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.deliverLoop(ctx, tm, t)
		}()
	}
	n.flushLoop(ctx, tm)
	wg.Wait()
	// A follower sends nothing: no connection outlives the term.
	n.client.CloseIdleConnections()
	for _, t := range n.targets {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
	}
}

// initCursors writes a cursor at the newest event for every target raft
// has none for, so a new target starts from now, not from the retained
// history. It retries until it succeeds or ctx ends (false).
func (n *Notifier) initCursors(ctx context.Context) bool {
	b := backoff.New(n.cfg.RetryMin, n.cfg.RetryMax)
	for {
		var last uint64
		if e := n.state.LastEvent(); e != nil {
			last = e.GetSeq()
		}
		now := time.Now().UnixNano()
		cmd := &rollwavev1.SetNotifyCursorsCommand{TimeUnixNano: now}
		for _, t := range n.targets {
			if n.state.NotifyCursor(t.Name) == nil {
				cmd.Cursors = append(cmd.Cursors, &rollwavev1.NotifyCursor{Target: t.Name, DeliveredSeq: last, CreatedUnixNano: now})
			}
		}
		if len(cmd.Cursors) == 0 {
			return true
		}
		err := n.w.SetNotifyCursors(ctx, cmd)
		if err == nil {
			for _, c := range cmd.Cursors {
				n.log.Info("notify: new target starts at the newest event", "target", c.GetTarget(), "seq", last)
			}
			return true
		}
		wait := b.Next()
		n.log.Warn("notify: recording new targets' cursors failed; retrying", "error", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// deliverLoop sends one target's events in seq order until ctx ends.
func (n *Notifier) deliverLoop(ctx context.Context, tm *term, t *target) {
	c := n.state.NotifyCursor(t.Name)
	cursor, lost, lastLoss := c.GetDeliveredSeq(), c.GetLostEvents(), c.GetLastLoss()
	t.mu.Lock()
	t.running, t.cursor, t.lost, t.lastLoss = true, cursor, lost, lastLoss
	t.mu.Unlock()
	b := backoff.New(n.cfg.RetryMin, n.cfg.RetryMax)
	for ctx.Err() == nil {
		w, last := n.state.WatchEvents()
		if last <= cursor {
			w.Wait(ctx)
			continue
		}
		for _, e := range n.state.Events("", cursor, n.cfg.Batch) {
			if gap := e.GetSeq() - cursor - 1; gap > 0 {
				// Only retention removes events: these went before
				// this target got them (subscribed or not: their
				// kinds are gone too).
				lost += gap
				lastLoss = fmt.Sprintf("%d event(s), seq %d to %d, pruned by retention before delivery", gap, cursor+1, e.GetSeq()-1)
				n.log.Error("notify: events lost to retention before delivery", "target", t.Name, "lost", gap,
					"from_seq", cursor+1, "to_seq", e.GetSeq()-1)
			}
			if t.Matches(e) && !n.deliver(ctx, t, e, b) {
				return
			}
			cursor = e.GetSeq()
			n.advance(tm, t, cursor, lost, lastLoss)
		}
	}
}

// advance records that t got everything up to cursor, for the next flush.
func (n *Notifier) advance(tm *term, t *target, cursor, lost uint64, lastLoss string) {
	t.mu.Lock()
	t.cursor, t.lost, t.lastLoss = cursor, lost, lastLoss
	t.mu.Unlock()
	tm.mu.Lock()
	tm.pending[t.Name] = &rollwavev1.NotifyCursor{Target: t.Name, DeliveredSeq: cursor, LostEvents: lost, LastLoss: lastLoss}
	tm.mu.Unlock()
	select {
	case tm.wake <- struct{}{}:
	default:
	}
}

// deliver POSTs e to t until it answers 2xx (true) or ctx ends (false).
func (n *Notifier) deliver(ctx context.Context, t *target, e *rollwavev1.Event, b *backoff.Backoff) bool {
	var rel *rollwavev1.Release
	if id := e.GetReleaseId(); id != "" {
		rel = n.state.Release(id)
	}
	p := payload(t.Name, n.cfg.UIURL, e, rel)
	for attempt := 1; ; attempt++ {
		data, err := body(t.Type, p)
		if err == nil {
			err = n.post(ctx, t, e, data)
		}
		if ctx.Err() != nil {
			return false
		}
		t.mu.Lock()
		t.attempts++
		if err == nil {
			t.delivered++
			t.lastSuccess = time.Now()
		} else {
			t.failures++
			t.lastError, t.lastErrorAt = err.Error(), time.Now()
		}
		t.mu.Unlock()
		if err == nil {
			b.Reset()
			return true
		}
		wait := b.Next()
		n.log.Warn("notify: delivery failed; retrying", "target", t.Name, "seq", e.GetSeq(), "kind", e.GetKind(),
			"attempt", attempt, "error", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// maxErrorBody is how much of a refusal's body goes into the last error.
const maxErrorBody = 256

// post sends one request. Errors name the target's redacted URL, never
// the full one (a Slack webhook's path is its secret).
func (n *Notifier) post(ctx context.Context, t *target, e *rollwavev1.Event, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("build request for %s: %v", RedactURL(t.URL), redactErr(err))
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.cfg.UserAgent)
	req.Header.Set(HeaderIdempotencyKey, IdempotencyKey(e))
	req.Header.Set(HeaderEvent, e.GetKind())
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(t.Secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(t.Secret, now, data))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %v", RedactURL(t.URL), redactErr(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return fmt.Errorf("POST %s: answered %s: %q", RedactURL(t.URL), resp.Status, strings.TrimSpace(string(snippet)))
}

// redactErr drops the URL net/http puts in its errors.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// flushLoop writes the pending cursor moves, at most one entry per
// FlushInterval, until ctx ends. A failed write keeps the moves and is
// retried with backoff.
func (n *Notifier) flushLoop(ctx context.Context, tm *term) {
	b := backoff.New(n.cfg.RetryMin, n.cfg.RetryMax)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tm.wake:
		}
		for {
			err := n.flush(ctx, tm)
			if err == nil {
				break
			}
			wait := b.Next()
			if ctx.Err() == nil {
				n.log.Warn("notify: recording delivery cursors failed; retrying", "error", err, "retry_in", wait)
			}
			if !sleep(ctx, wait) {
				return
			}
		}
		b.Reset()
		if !sleep(ctx, n.cfg.FlushInterval) {
			return
		}
	}
}

// flush writes the pending moves as one entry; on failure they go back
// (unless a newer move replaced them meanwhile).
func (n *Notifier) flush(ctx context.Context, tm *term) error {
	tm.mu.Lock()
	batch := tm.pending
	tm.pending = map[string]*rollwavev1.NotifyCursor{}
	tm.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	cmd := &rollwavev1.SetNotifyCursorsCommand{TimeUnixNano: time.Now().UnixNano()}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range batch {
			if !yield(k) {
				return
			}
		}
	}) {
		cmd.Cursors = append(cmd.Cursors, batch[name])
	}
	err := n.w.SetNotifyCursors(ctx, cmd)
	if err == nil {
		return nil
	}
	tm.mu.Lock()
	for name, c := range batch {
		if cur, ok := tm.pending[name]; !ok || cur.GetDeliveredSeq() < c.GetDeliveredSeq() {
			tm.pending[name] = c
		}
	}
	tm.mu.Unlock()
	return err
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Status returns each target's delivery state: raft's cursor, or this
// server's own when it is delivering (ahead until the next flush), the
// lag behind the newest event, and what this server saw of its attempts.
func (n *Notifier) Status() []*rollwavev1.NotifyTargetStatus {
	var last uint64
	if e := n.state.LastEvent(); e != nil {
		last = e.GetSeq()
	}
	out := make([]*rollwavev1.NotifyTargetStatus, 0, len(n.targets))
	for _, t := range n.targets {
		c := n.state.NotifyCursor(t.Name)
		st := &rollwavev1.NotifyTargetStatus{
			Name: t.Name, Type: t.Type, Url: RedactURL(t.URL), Events: slices.Clone(t.Events),
			Cursor: c.GetDeliveredSeq(), LastEventSeq: last, LostEvents: c.GetLostEvents(), LastLoss: c.GetLastLoss(),
		}
		t.mu.Lock()
		if t.running && t.cursor > st.Cursor {
			st.Cursor, st.LostEvents, st.LastLoss = t.cursor, t.lost, t.lastLoss
		}
		st.Attempts, st.Failures, st.Delivered = t.attempts, t.failures, t.delivered
		st.LastError = t.lastError
		st.LastSuccessUnixNano, st.LastErrorUnixNano = unixNano(t.lastSuccess), unixNano(t.lastErrorAt)
		t.mu.Unlock()
		if c == nil && !t.running {
			// Not started yet (no leader has run it): it will start at
			// the newest event, so nothing is behind.
			st.Cursor = last
		}
		if last > st.Cursor {
			st.LagEvents = last - st.Cursor
			if next := n.state.Events("", st.Cursor, 1); len(next) == 1 {
				st.LagSeconds = max(0, time.Since(time.Unix(0, next[0].GetTimeUnixNano())).Seconds())
			}
		}
		out = append(out, st)
	}
	return out
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
