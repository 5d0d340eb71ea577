package slot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollwave/rollwave/internal/health"
)

// Shadow traffic (phases.shadow). During a dark phase the HTTP proxy sends
// every user request to the old slot, as always, and mirrors a sample of
// them to the new slot: the copy goes out only once the user's answer is
// complete, with its own timeout, and its answer is read (bounded) and
// thrown away. What is kept is a comparison of the two answers to the
// same request — error or not, and how long each took — for the dark
// phase's gate.
//
// An attacker controls the requests that get mirrored, so the mirror:
//   - only ever dials the new slot's 127.0.0.1 port: the address is fixed
//     when the route is set, never taken from the request (Host header,
//     absolute URL), and no HTTP proxy from the environment is used;
//   - follows no redirects (it is a bare Transport round trip);
//   - holds at most shadowMaxInFlight copies at once, each body at most
//     ShadowMaxBody bytes (larger, or of unknown length and growing past
//     it, are not mirrored) and header at most shadowMaxHeader, and reads
//     at most shadowMaxAnswer bytes of an answer (into io.Discard):
//     memory is bounded whatever the clients send;
//   - never blocks the user's request: a full pipeline drops the copy and
//     counts it, and the copy is sent from its own goroutine.

// Shadow limits.
const (
	// ShadowMaxBody is the largest request body mirrored.
	ShadowMaxBody = 64 << 10
	// shadowMaxInFlight bounds the copies being captured or sent at once.
	shadowMaxInFlight = 32
	// ShadowTimeout bounds one mirrored request, answer included; a copy
	// that takes longer counts as an error of the new slot.
	ShadowTimeout = 5 * time.Second
	// shadowMaxHeader bounds a mirrored request's header (the HTTP
	// server allows 1 MiB; 32 copies of that is more than a mirror is
	// worth).
	shadowMaxHeader = 16 << 10
	// shadowMaxAnswer bounds how much of the new slot's answer is read
	// (and discarded) before the connection is dropped.
	shadowMaxAnswer = 1 << 20
)

// ShadowHeader marks a mirrored request, so the app can tell it from a
// user's (and skip side effects it must not repeat). The proxy removes it
// from every user request it forwards, so only copies carry it.
const ShadowHeader = "X-Rollwave-Shadow"

// Shadow configures request mirroring during a dark phase.
type Shadow struct {
	// Sample is the share of requests mirrored, in (0, 1].
	Sample float64 `json:"sample"`
	// Methods are the HTTP methods mirrored (upper case).
	Methods []string `json:"methods"`
}

// Validate reports a shadow configuration the proxy cannot apply.
func (s *Shadow) Validate() error {
	if s == nil {
		return nil
	}
	if !(s.Sample > 0 && s.Sample <= 1) {
		return fmt.Errorf("%w: shadow sample %v: want a share in (0, 1]", ErrSwitch, s.Sample)
	}
	if len(s.Methods) == 0 {
		return fmt.Errorf("%w: shadow: no methods to mirror", ErrSwitch)
	}
	return nil
}

// ShadowStats is what the mirror measured: for the same requests, the
// old slot's (live) answers and the new slot's (shadow) answers.
type ShadowStats struct {
	Live, Shadow health.RequestStats
	// Mismatched counts requests whose answers differ in status class
	// (2xx, 3xx, 4xx, 5xx; a transport error is its own class).
	Mismatched uint64
	// Dropped counts sampled requests not mirrored: too many copies in
	// flight, or a body over ShadowMaxBody.
	Dropped uint64
}

// Merge adds o into s.
func (s *ShadowStats) Merge(o *ShadowStats) {
	s.Live.Merge(&o.Live)
	s.Shadow.Merge(&o.Shadow)
	s.Mismatched += o.Mismatched
	s.Dropped += o.Dropped
}

// ShadowMeter is a Switch that mirrors requests during a dark phase.
type ShadowMeter interface {
	// DrainShadowStats returns what was compared since the last call;
	// false when no mirror runs.
	DrainShadowStats() (ShadowStats, bool)
}

var _ ShadowMeter = (*Proxy)(nil)

// shadower mirrors requests to one new slot.
type shadower struct {
	target  *backend
	methods []string
	// Sampling: request n is mirrored when floor(n·sample) moves, so the
	// mirrored share is the sample to within one request, evenly spread.
	sample float64
	n      atomic.Uint64

	sem       chan struct{}
	transport *http.Transport
	ctx       context.Context
	cancel    context.CancelFunc
	wg        *sync.WaitGroup

	mu    sync.Mutex
	stats ShadowStats
	// closed (under mu): no copy starts any more, so the proxy's Close
	// can wait for those in flight (wg.Add never races its Wait).
	closed bool
}

func newShadower(target *backend, cfg *Shadow, wg *sync.WaitGroup) *shadower {
	ctx, cancel := context.WithCancel(context.Background())
	addr := target.addr
	dialer := &net.Dialer{Timeout: DefaultProxyDialTimeout}
	return &shadower{
		target: target, methods: slices.Clone(cfg.Methods), sample: cfg.Sample,
		sem: make(chan struct{}, shadowMaxInFlight),
		transport: &http.Transport{
			// Proxy stays nil: never HTTP_PROXY from the environment.
			// Whatever address the request names, the copy goes to the
			// new slot's loopback port.
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) },
			MaxConnsPerHost:     shadowMaxInFlight,
			MaxIdleConnsPerHost: shadowMaxInFlight,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
			// The answer's head must come within the copy's timeout too.
			ResponseHeaderTimeout: ShadowTimeout,
		},
		ctx: ctx, cancel: cancel, wg: wg,
	}
}

// close stops the copies in flight (their new slot is no longer judged)
// and drops idle connections.
func (s *shadower) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.transport.CloseIdleConnections()
}

func (s *shadower) drain() ShadowStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	s.stats = ShadowStats{}
	return out
}

// sampled reports whether the next request is in the sample.
func (s *shadower) sampled() bool {
	n := s.n.Add(1)
	return math.Floor(float64(n)*s.sample) > math.Floor(float64(n-1)*s.sample)
}

// mirror is one request being copied.
type mirror struct {
	s       *shadower
	method  string
	uri     string
	host    string
	remote  string
	header  http.Header
	body    *capture
	started bool
}

// begin decides whether r is mirrored and, if so, starts capturing its
// body as the user's request streams it to the old slot (the user's
// request is not delayed: nothing is read ahead). nil: not mirrored.
func (s *shadower) begin(r *http.Request) *mirror {
	if !slices.Contains(s.methods, r.Method) || r.Header.Get("Upgrade") != "" {
		return nil
	}
	if !s.sampled() {
		return nil
	}
	if r.ContentLength > ShadowMaxBody || headerSize(r.Header) > shadowMaxHeader {
		s.count(func(st *ShadowStats) { st.Dropped++ })
		return nil
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.count(func(st *ShadowStats) { st.Dropped++ })
		return nil
	}
	m := &mirror{s: s, method: r.Method, uri: r.URL.RequestURI(), host: r.Host, remote: r.RemoteAddr, header: shadowHeader(r.Header)}
	if r.Body != nil && r.Body != http.NoBody {
		m.body = &capture{ReadCloser: r.Body, want: r.ContentLength}
		r.Body = m.body
	}
	return m
}

// abandon gives up a copy that will not be sent.
func (m *mirror) abandon() {
	if !m.started {
		<-m.s.sem
	}
}

// send mirrors the request to the new slot, in the background, and
// compares its answer with live's (the old slot's answer to the same
// request).
func (m *mirror) send(live outcome) {
	s := m.s
	if m.body != nil && !m.body.complete() {
		// The old slot answered without reading the whole body, or it was
		// larger than we keep: the copy would not be the same request.
		s.count(func(st *ShadowStats) { st.Dropped++ })
		<-s.sem
		m.started = true
		return
	}
	m.started = true
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.sem
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		got := m.roundTrip()
		s.count(func(st *ShadowStats) {
			addOutcome(&st.Live, live)
			addOutcome(&st.Shadow, got.outcome)
			if got.class != statusClass(live) {
				st.Mismatched++
			}
		})
	}()
}

type shadowAnswer struct {
	outcome outcome
	class   int
}

func (m *mirror) roundTrip() shadowAnswer {
	s := m.s
	ctx, cancel := context.WithTimeout(s.ctx, ShadowTimeout)
	defer cancel()
	var body io.Reader = http.NoBody
	var size int64
	if m.body != nil {
		m.body.mu.Lock()
		b := m.body.buf.Bytes() // no more writes: complete() said so
		m.body.mu.Unlock()
		body, size = bytes.NewReader(b), int64(len(b))
	}
	req, err := http.NewRequestWithContext(ctx, m.method, s.target.url.String()+m.uri, body)
	if err != nil {
		return shadowAnswer{outcome: outcome{failed: true, upstream: true}, class: 0}
	}
	req.Header = m.header
	req.Host = m.host
	req.ContentLength = size
	start := time.Now()
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		return shadowAnswer{outcome: outcome{failed: true, upstream: true, timed: true, took: time.Since(start)}, class: 0}
	}
	_, cerr := io.Copy(io.Discard, io.LimitReader(resp.Body, shadowMaxAnswer))
	resp.Body.Close()
	took := time.Since(start)
	if cerr != nil && !errors.Is(cerr, io.EOF) {
		// Cut off (or timed out) mid-answer: the user would have seen a
		// broken response.
		return shadowAnswer{outcome: outcome{failed: true, upstream: true, timed: true, took: took}, class: 0}
	}
	return shadowAnswer{outcome: outcome{failed: resp.StatusCode >= 500, timed: true, took: took}, class: resp.StatusCode / 100}
}

func (s *shadower) count(fn func(*ShadowStats)) {
	s.mu.Lock()
	fn(&s.stats)
	s.mu.Unlock()
}

// statusClass is an outcome's status class for the comparison: 0 for a
// transport error (no answer), else the status's hundreds.
func statusClass(o outcome) int {
	if o.upstream {
		return 0
	}
	return o.status / 100
}

// headerSize is roughly how many bytes h takes on the wire.
func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1), plus the proxy
// credentials, which are not the app's.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// shadowHeader is the copy's header: the user's, without hop-by-hop
// fields (and those Connection names), marked as a mirror.
func shadowHeader(in http.Header) http.Header {
	h := in.Clone()
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set(ShadowHeader, "1")
	return h
}

// capture passes a request body through to the old slot and keeps a copy
// of at most ShadowMaxBody bytes.
type capture struct {
	io.ReadCloser
	// mu: the reverse proxy's transport may still be writing the body
	// from its own goroutine when the answer is complete.
	mu       sync.Mutex
	want     int64 // Content-Length, -1 unknown
	buf      bytes.Buffer
	overflow bool
	eof      bool
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && !c.overflow {
		if c.buf.Len()+n > ShadowMaxBody {
			c.overflow = true
			c.buf = bytes.Buffer{} // let it go
		} else {
			c.buf.Write(p[:n])
		}
	}
	if errors.Is(err, io.EOF) {
		c.eof = true
	}
	return n, err
}

// complete: the whole body was read and kept.
func (c *capture) complete() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return false
	}
	if c.want >= 0 {
		return int64(c.buf.Len()) == c.want
	}
	return c.eof
}
