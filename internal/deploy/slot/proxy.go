package slot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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

// WithIdleTimeout closes a connection with no bytes in either direction
// for d.
func WithIdleTimeout(d time.Duration) ProxyOption { return func(p *Proxy) { p.idle = d } }

// Proxy is the agent's TCP traffic switch: it listens on the app's public
// address and forwards each connection to 127.0.0.1:<port of the active
// slot>. Switching is one atomic pointer store: a connection keeps the
// backend it was dialled to until it closes (so in-flight requests finish
// on the old slot), and every connection accepted afterwards goes to the
// new one.
type Proxy struct {
	ln       net.Listener
	log      *slog.Logger
	maxConns int
	idle     time.Duration
	dial     time.Duration

	backend atomic.Pointer[backend]
	sem     chan struct{}
	// refused counts connections turned away at the limit.
	refused        atomic.Uint64
	lastRefusalLog atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

type backend struct {
	slot Name
	addr string
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
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen %s: %w", listen, err)
	}
	p.ln = ln
	p.sem = make(chan struct{}, p.maxConns)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Point implements Switch.
func (p *Proxy) Point(_ context.Context, slot Name, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrSwitch, port)
	}
	p.backend.Store(&backend{slot: slot, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	p.log.Info("traffic switched", "slot", slot, "port", port)
	return nil
}

// Current implements Switch.
func (p *Proxy) Current() (Name, bool) {
	b := p.backend.Load()
	if b == nil {
		return "", false
	}
	return b.slot, true
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
	p.wg.Wait()
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
	// The backend is read once: this connection stays on it for life.
	b := p.backend.Load()
	if b == nil {
		return
	}
	server, err := net.DialTimeout("tcp", b.addr, p.dial)
	if err != nil {
		p.log.Warn("proxy dial failed", "slot", b.slot, "addr", b.addr, "error", err)
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)

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
