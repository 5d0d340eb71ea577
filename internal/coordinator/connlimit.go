package coordinator

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Limits bound what clients may hold open on the gRPC listener, so that
// idle or half-open connections cannot exhaust the server's file
// descriptors (and with them raft, gossip and bolt). Zero counts mean no
// cap; the durations must be positive.
type Limits struct {
	// RPCMaxConnsPerClient caps the open gRPC connections from one client
	// IP address; connections beyond it are closed as soon as they are
	// accepted. Default 100 (Consul's rpc_max_conns_per_client). A host
	// runs one agent holding one connection, and a CLI call one more.
	RPCMaxConnsPerClient int
	// RPCMaxConns caps all open gRPC connections of the listener. Default
	// 30,000: well below the LimitNOFILE=65536 of the packaged unit, so
	// raft, gossip and the data files always get descriptors.
	RPCMaxConns int
	// RPCHandshakeTimeout bounds the TLS handshake and HTTP/2 preface of a
	// new connection (grpc.ConnectionTimeout); a connection that has not
	// completed them in time is closed. Default 5s.
	RPCHandshakeTimeout time.Duration
	// RPCIdleTimeout closes a connection that has had no active call for
	// this long (keepalive MaxConnectionIdle, with a GOAWAY the client
	// handles by reconnecting when it next needs to). Agent sessions are
	// streams, so they are never idle. Default 5m.
	RPCIdleTimeout time.Duration
}

// DefaultLimits returns the production limits.
func DefaultLimits() Limits {
	return Limits{
		RPCMaxConnsPerClient: 100,
		RPCMaxConns:          30000,
		RPCHandshakeTimeout:  5 * time.Second,
		RPCIdleTimeout:       5 * time.Minute,
	}
}

func (l Limits) validate() error {
	switch {
	case l.RPCMaxConnsPerClient < 0:
		return fmt.Errorf("limits.rpc_max_conns_per_client must be 0 (no cap) or more, got %d", l.RPCMaxConnsPerClient)
	case l.RPCMaxConns < 0:
		return fmt.Errorf("limits.rpc_max_conns must be 0 (no cap) or more, got %d", l.RPCMaxConns)
	case l.RPCHandshakeTimeout <= 0:
		return fmt.Errorf("limits.rpc_handshake_timeout must be positive, got %s", l.RPCHandshakeTimeout)
	case l.RPCIdleTimeout <= 0:
		return fmt.Errorf("limits.rpc_idle_timeout must be positive, got %s", l.RPCIdleTimeout)
	}
	return nil
}

// keepaliveEnforcementMinTime is the shortest client keepalive interval
// the server tolerates: grpc-go clients cannot ping more often than every
// 10s (it raises shorter keepalive.ClientParameters.Time to 10s), so any
// legal client setting passes. rollwave's own clients (agent sessions, the
// CLI, forwarding between servers) send no keepalive pings at all; the
// agent detects a dead leader by its heartbeat acks.
const keepaliveEnforcementMinTime = 10 * time.Second

// connectionOptions are the gRPC server options that bound connections.
func (l Limits) connectionOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(l.RPCHandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.RPCIdleTimeout,
			// Ping a connection silent this long, and close it when the
			// ping is not answered: a cut link sends no FIN.
			Time:    time.Minute,
			Timeout: 20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: keepaliveEnforcementMinTime,
			// Pings with no call open are refused (GOAWAY): a client
			// must not keep an idle connection alive by pinging.
			PermitWithoutStream: false,
		}),
	}
}

// limitListener caps open connections per client IP and in total. It is
// written here because golang.org/x/net/netutil.LimitListener does not fit:
// its cap is global only (one address could take every slot) and, at the
// cap, it stops calling Accept, so the kernel backlog fills and legitimate
// clients hang in SYN until the flood ends. hashicorp/go-connlimit (what
// Consul uses) is not available from the module proxy. Here a connection
// over a cap is accepted and closed at once (with RST, leaving no
// TIME_WAIT), so the offender learns promptly and everyone else is served.
type limitListener struct {
	net.Listener
	perIP, total int
	log          *slog.Logger

	mu   sync.Mutex
	byIP map[string]int
	open int

	// refused counts connections closed over a cap; their log line is
	// rate-limited (a flood must not flood the log too).
	refused   atomic.Int64
	refuseLog rate.Sometimes
}

func newLimitListener(ln net.Listener, lim Limits, log *slog.Logger) *limitListener {
	return &limitListener{
		Listener: ln, perIP: lim.RPCMaxConnsPerClient, total: lim.RPCMaxConns, log: log,
		byIP:      map[string]int{},
		refuseLog: rate.Sometimes{First: 1, Interval: 10 * time.Second},
	}
}

// Accept returns the next connection within the caps; connections over a
// cap are closed here and never reach gRPC.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if why := l.acquire(ip); why != "" {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			l.refused.Add(1)
			l.refuseLog.Do(func() {
				l.log.Warn("refused gRPC connections over the connection limits (logged at most every 10s)",
					"client_ip", ip, "reason", why, "refused_since_last_log", l.refused.Swap(0))
			})
			continue
		}
		return wrapLimited(c, func() { l.release(ip) }), nil
	}
}

// acquire counts a new connection from ip, or says which cap it breaks.
func (l *limitListener) acquire(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.open >= l.total {
		return fmt.Sprintf("limits.rpc_max_conns (%d) reached", l.total)
	}
	if l.perIP > 0 && l.byIP[ip] >= l.perIP {
		return fmt.Sprintf("limits.rpc_max_conns_per_client (%d) reached", l.perIP)
	}
	l.open++
	l.byIP[ip]++
	return ""
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// counts returns the open connections in total and from ip.
func (l *limitListener) counts(ip string) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byIP[ip]
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn gives its slot back once, on the first Close. On Linux a
// TCP connection is wrapped as a readyConn instead (connlimit_linux.go),
// so that grpc-go can still read it without a per-connection buffer.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
