package slot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollwave/rollwave/internal/health"
)

// Proxy defaults.
const (
	DefaultProxyMaxConns    = 10_000
	DefaultProxyIdleTimeout = 5 * time.Minute
	DefaultProxyDialTimeout = 5 * time.Second
)

// ProxyOption tunes a Proxy.
type ProxyOption func(*Proxy)

// WithMaxConns bounds concurrent client connections; one more is accepted
// and closed at once.
func WithMaxConns(n int) ProxyOption { return func(p *Proxy) { p.maxConns = n } }

// WithProtocol sets what the proxy speaks: "tcp" (or "") or "http"; see
// SetProtocol.
func WithProtocol(protocol string) ProxyOption {
	return func(p *Proxy) { p.initialProtocol = protocol }
}

// WithIdleTimeout closes a connection with no bytes in either direction
// for d.
func WithIdleTimeout(d time.Duration) ProxyOption { return func(p *Proxy) { p.idle = d } }

// Proxy is the agent's traffic switch: it listens on the app's public
// address and forwards to 127.0.0.1:<port of the active slot>. Switching
// is one atomic pointer store.
//
// With protocol "tcp" it pipes bytes: a connection keeps the backend it was
// dialled to until it closes (so in-flight requests finish on the old
// slot), and every connection accepted afterwards goes to the new one. It
// counts, per slot, connections, failed connects and connection duration.
//
// With protocol "http" it is a reverse proxy (net/http/httputil): client
// connections are kept alive, each request goes to the slot active when it
// arrives, bodies stream (responses are flushed as they come), and
// Upgrade requests (websockets) are passed through as a byte pipe. It
// counts, per slot, requests, 5xx answers, upstream connect errors and
// timeouts (both as errors, answered 502/504) and latency until the end of
// the response (upgraded connections are counted, not timed).
//
// Both share one accept loop, connection limit and shutdown; the protocol
// can change while connections are open (SetProtocol): it applies to
// connections accepted afterwards.
type Proxy struct {
	ln       net.Listener
	log      *slog.Logger
	maxConns int
	idle     time.Duration
	dial     time.Duration

	route  atomic.Pointer[route]
	picker picker
	sem    chan struct{}
	// refused counts connections turned away at the limit.
	refused        atomic.Uint64
	lastRefusalLog atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	initialProtocol string
	http            atomic.Bool // protocol is "http"
	httpConns       *connQueue
	httpSrv         *http.Server
	transport       *http.Transport
	rp              *httputil.ReverseProxy
	meter           meter
	// mirrors counts shadow copies in flight (each bounded by
	// ShadowTimeout, and cancelled when its route is replaced).
	mirrors sync.WaitGroup
}

type backend struct {
	slot Name
	addr string
	url  *url.URL
}

var _ Switch = (*Proxy)(nil)

// NewProxy listens on listen (host:port; ":8080" for every address) and
// starts forwarding. Until the first Point, connections are closed.
func NewProxy(listen string, logger *slog.Logger, opts ...ProxyOption) (*Proxy, error) {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Proxy{
		log:      logger.With("component", "slot", "switch", "proxy"),
		maxConns: DefaultProxyMaxConns,
		idle:     DefaultProxyIdleTimeout,
		dial:     DefaultProxyDialTimeout,
		conns:    map[net.Conn]struct{}{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.maxConns < 1 {
		return nil, fmt.Errorf("proxy: max connections %d must be at least 1", p.maxConns)
	}
	if err := p.SetProtocol(p.initialProtocol); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen %s: %w", listen, err)
	}
	p.ln = ln
	p.sem = make(chan struct{}, p.maxConns)
	p.initHTTP()
	p.wg.Add(2)
	go p.serve()
	go func() {
		defer p.wg.Done()
		// Returns when the queue is closed (Close).
		_ = p.httpSrv.Serve(p.httpConns)
	}()
	return p, nil
}

// Proxy protocols.
const (
	ProtocolTCP  = "tcp"
	ProtocolHTTP = "http"
)

// SetProtocol switches between "tcp" ("" too) and "http" for connections
// accepted from now on.
func (p *Proxy) SetProtocol(protocol string) error {
	switch protocol {
	case "", ProtocolTCP:
		p.http.Store(false)
	case ProtocolHTTP:
		p.http.Store(true)
	default:
		return fmt.Errorf("%w: traffic.protocol %q: want tcp or http", ErrSwitch, protocol)
	}
	return nil
}

// Protocol is "tcp" or "http".
func (p *Proxy) Protocol() string {
	if p.http.Load() {
		return ProtocolHTTP
	}
	return ProtocolTCP
}

// DrainStats implements Meter.
func (p *Proxy) DrainStats() (string, map[Name]*health.RequestStats) {
	return p.Protocol(), p.meter.drain()
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Point implements Switch.
func (p *Proxy) Point(_ context.Context, slot Name, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrSwitch, port)
	}
	p.setRoute(&route{b: newBackend(slot, port)})
	p.log.Info("traffic switched", "slot", slot, "port", port)
	return nil
}

// setRoute makes r the route of new traffic and stops the mirror of the
// route it replaces.
func (p *Proxy) setRoute(r *route) {
	if old := p.route.Swap(r); old != nil && old.shadow != nil && (r == nil || r.shadow != old.shadow) {
		old.shadow.close()
	}
}

// DrainShadowStats implements ShadowMeter.
func (p *Proxy) DrainShadowStats() (ShadowStats, bool) {
	r := p.route.Load()
	if r == nil || r.shadow == nil {
		return ShadowStats{}, false
	}
	return r.shadow.drain(), true
}

func newBackend(slot Name, port int) *backend {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return &backend{slot: slot, addr: addr, url: &url.URL{Scheme: "http", Host: addr}}
}

// PointWeighted implements WeightedSwitch: w.Weight percent of the
// connections (tcp) or requests (http) that arrive from now on go to
// slot, the rest to w.Old; open TCP connections stay where they are. A
// weight of 100 is Point(slot), 0 is Point(w.Old).
func (p *Proxy) PointWeighted(ctx context.Context, slot Name, port int, w Weighting) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if w.Sticky == StickyCookie && !p.http.Load() {
		return fmt.Errorf("%w: traffic.sticky = cookie needs protocol http", ErrSwitch)
	}
	if w.Shadow != nil && !p.http.Load() {
		return fmt.Errorf("%w: shadow traffic needs protocol http", ErrSwitch)
	}
	switch {
	case w.Weight == 100:
		return p.Point(ctx, slot, port)
	case w.Weight == 0 && w.Shadow == nil:
		return p.Point(ctx, w.Old, w.OldPort)
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrSwitch, port)
	}
	r := &route{b: newBackend(slot, port), old: newBackend(w.Old, w.OldPort), weight: w.Weight, sticky: w.Sticky}
	if w.Shadow != nil {
		r.shadow = newShadower(r.b, w.Shadow, &p.mirrors)
		p.setRoute(r)
		p.log.Info("traffic on the old slot, mirroring a sample to the new one", "slot", slot, "port", port,
			"old_slot", w.Old, "old_port", w.OldPort, "sample", w.Shadow.Sample, "methods", w.Shadow.Methods)
		return nil
	}
	p.setRoute(r)
	p.log.Info("traffic weighted", "slot", slot, "port", port, "weight", w.Weight, "old_slot", w.Old, "old_port", w.OldPort, "sticky", w.Sticky)
	return nil
}

// Current implements Switch: the slot new traffic goes to (during a
// weighted step, the new one; Weight tells the share).
func (p *Proxy) Current() (Name, bool) {
	r := p.route.Load()
	if r == nil {
		return "", false
	}
	return r.b.slot, true
}

// Weight is the percentage of new traffic Current gets: 100 unless a
// weighted step runs.
func (p *Proxy) Weight() int {
	if r := p.route.Load(); r != nil && r.old != nil {
		return r.weight
	}
	return 100
}

// Close stops listening, closes every open connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.httpConns.close()
	// The HTTP server's own connections are among p.conns (closed above);
	// Close also ends its idle-connection bookkeeping.
	_ = p.httpSrv.Close()
	p.wg.Wait()
	p.transport.CloseIdleConnections()
	p.setRoute(nil) // stops the mirror, if any
	p.mirrors.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary (EMFILE and the like): back off, capped.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			p.log.Warn("proxy accept failed", "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		select {
		case p.sem <- struct{}{}:
		default:
			p.refused.Add(1)
			// At most one line a second: an overload must not flood the log.
			if now := time.Now().UnixNano(); now-p.lastRefusalLog.Load() > int64(time.Second) {
				p.lastRefusalLog.Store(now)
				p.log.Warn("proxy at connection limit, refusing connections", "max_conns", p.maxConns,
					"refused_total", p.refused.Load(), "remote", c.RemoteAddr().String())
			}
			c.Close()
			continue
		}
		if !p.track(c) {
			<-p.sem
			c.Close()
			return
		}
		if p.http.Load() {
			if !p.httpConns.put(&releasingConn{Conn: c, release: func() { p.untrack(c); <-p.sem }}) {
				p.untrack(c)
				<-p.sem
				return
			}
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer func() { <-p.sem }()
	defer p.untrack(client)
	// The backend is chosen once: this connection stays on it for life.
	r := p.route.Load()
	if r == nil {
		return
	}
	b := p.pickConn(r, client.RemoteAddr())
	start := time.Now()
	server, err := net.DialTimeout("tcp", b.addr, p.dial)
	if err != nil {
		p.meter.record(b.slot, outcome{failed: true, upstream: true})
		p.log.Warn("proxy dial failed", "slot", b.slot, "addr", b.addr, "error", err)
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	defer func() { p.meter.record(b.slot, outcome{timed: true, took: time.Since(start)}) }()

	var last atomic.Int64 // unix nanos of the last byte either way
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, &last); done <- struct{}{} }()
	go func() { p.pipe(client, server, &last); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst until EOF or error, with the shared idle timeout:
// a read deadline expiry only ends the copy if the other direction was
// idle too. On EOF it half-closes dst so the peer sees the end.
func (p *Proxy) pipe(dst, src net.Conn, last *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		_ = src.SetReadDeadline(time.Now().Add(p.idle))
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			_ = dst.SetWriteDeadline(time.Now().Add(p.idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < p.idle {
				continue // the other direction is busy
			}
			if err == io.EOF {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			// Error or idle: tear down both directions.
			dst.Close()
			src.Close()
			return
		}
	}
}
