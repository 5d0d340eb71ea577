package slot

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/health"
)

// Meter is a Switch that measures the traffic it carries.
type Meter interface {
	// DrainStats returns the protocol ("tcp" or "http") and what each
	// slot's traffic did since the last call; it never blocks for long.
	DrainStats() (string, map[Name]*health.RequestStats)
}

// StepMeter is a Meter with a second tally for the weighted-step gate.
type StepMeter interface {
	// DrainStepStats is DrainStats for the step gate: it returns what
	// each slot's traffic did since its own last call, independently of
	// DrainStats.
	DrainStepStats() map[Name]*health.RequestStats
}

var (
	_ Meter     = (*Proxy)(nil)
	_ StepMeter = (*Proxy)(nil)
)

// DrainStepStats implements StepMeter.
func (p *Proxy) DrainStepStats() map[Name]*health.RequestStats { return p.meter.drainStep() }

// HTTP side defaults.
const (
	// proxyReadHeaderTimeout bounds a client's request head (slowloris).
	proxyReadHeaderTimeout = 30 * time.Second
	// proxyMaxIdlePerBackend keeps this many idle connections to a slot,
	// so keep-alive clients do not cost a dial per request.
	proxyMaxIdlePerBackend = 256
)

func (p *Proxy) initHTTP() {
	p.httpConns = newConnQueue(p.ln.Addr())
	p.transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: p.dial, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4 * proxyMaxIdlePerBackend,
		MaxIdleConnsPerHost:   proxyMaxIdlePerBackend,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The app's encoding goes through untouched.
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			info := pr.In.Context().Value(reqInfoKey{}).(*reqInfo)
			pr.SetURL(info.b.url)
			pr.Out.Host = pr.In.Host // the app sees the name clients used
			// Only the proxy's own mirror may mark a request as a copy: an
			// app that skips side effects for copies must not be fooled by
			// a client setting the header.
			pr.Out.Header.Del(ShadowHeader)
			pr.SetXForwarded()
		},
		Transport: p.transport,
		// Stream: every write of the app reaches the client at once
		// (server-sent events, long polls, chunked downloads).
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			resp.Request.Context().Value(reqInfoKey{}).(*reqInfo).status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			info := r.Context().Value(reqInfoKey{}).(*reqInfo)
			if r.Context().Err() != nil {
				// The client went away: not the slot's fault.
				info.clientGone = true
				return
			}
			status := http.StatusBadGateway
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				status = http.StatusGatewayTimeout
			}
			info.status, info.upstream = status, true
			p.log.Debug("proxy upstream error", "slot", info.b.slot, "addr", info.b.addr, "error", err)
			w.WriteHeader(status)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: proxyReadHeaderTimeout,
		IdleTimeout:       p.idle,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

type reqInfoKey struct{}

// reqInfo follows one request through the reverse proxy's callbacks.
type reqInfo struct {
	b          *backend
	status     int
	upstream   bool
	clientGone bool
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt := p.route.Load()
	if rt == nil {
		http.Error(w, "no slot is active yet", http.StatusServiceUnavailable)
		return
	}
	b := p.pickRequest(rt, w, r)
	info := &reqInfo{b: b}
	// During a dark phase with shadow, a sample of the requests (all of
	// which go to the old slot) is copied to the new one afterwards.
	var mr *mirror
	if rt.shadow != nil && b == rt.old {
		mr = rt.shadow.begin(r)
	}
	start := time.Now()
	// Deferred: a response cut off while streaming ends in the reverse
	// proxy's http.ErrAbortHandler panic, and still counts.
	defer func() {
		o := outcome{
			failed:   info.upstream || info.status >= 500,
			upstream: info.upstream,
			took:     time.Since(start),
			// An upgraded connection's lifetime is not a latency.
			timed:  info.status != http.StatusSwitchingProtocols,
			status: info.status,
		}
		if info.clientGone {
			o = outcome{}
		}
		p.meter.record(b.slot, o)
		if mr == nil {
			return
		}
		if info.clientGone || !o.timed {
			mr.abandon()
			return
		}
		// The user has the whole answer: only now does the copy go out.
		mr.send(o)
	}()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info)))
}

// outcome is one request's (or TCP connection's) result.
type outcome struct {
	failed, upstream bool
	timed            bool
	took             time.Duration
	status           int // http: the answer's status
}

// meter adds up outcomes per slot until drained. It keeps two tallies
// drained independently: one for the heartbeats (drain) and one for the
// agent's weighted-step gate (drainStep), so neither steals the other's
// counts.
type meter struct {
	mu    sync.Mutex
	slots map[Name]*health.RequestStats
	step  map[Name]*health.RequestStats
}

func (m *meter) record(slot Name, o outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slots = addSlotOutcome(m.slots, slot, o)
	m.step = addSlotOutcome(m.step, slot, o)
}

func addSlotOutcome(slots map[Name]*health.RequestStats, slot Name, o outcome) map[Name]*health.RequestStats {
	if slots == nil {
		slots = map[Name]*health.RequestStats{}
	}
	s := slots[slot]
	if s == nil {
		s = &health.RequestStats{}
		slots[slot] = s
	}
	addOutcome(s, o)
	return slots
}

func addOutcome(s *health.RequestStats, o outcome) {
	s.Requests++
	if o.failed {
		s.Errors++
	}
	if o.upstream {
		s.UpstreamErrors++
	}
	if o.timed {
		s.Latency.Add(o.took)
	}
}

func (m *meter) drainStep() map[Name]*health.RequestStats { return m.take(&m.step) }

func (m *meter) drain() map[Name]*health.RequestStats { return m.take(&m.slots) }

// take returns one tally and starts it afresh.
func (m *meter) take(tally *map[Name]*health.RequestStats) map[Name]*health.RequestStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := *tally
	*tally = nil
	return out
}

// connQueue is the net.Listener the HTTP server serves: the proxy's own
// accept loop (connection limit, tracking) hands it the connections that
// are to speak HTTP.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to the HTTP server; false once the queue is closed.
func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) close() { q.once.Do(func() { close(q.done) }) }

func (q *connQueue) Close() error { q.close(); return nil }

func (q *connQueue) Addr() net.Addr { return q.addr }

// releasingConn runs release once, when the HTTP server (or the reverse
// proxy, for an upgraded connection) closes it.
type releasingConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *releasingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
