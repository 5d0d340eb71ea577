package coordinator

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/tlsutil"
)

// rateLimiter is a token bucket per client address for the operator API:
// a runaway script must not starve the leader. Agents' sessions and
// requests forwarded by other servers (proven servers only, see
// clientKey) are not limited.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time

	// isServer reports whether the caller is another server, exempt from
	// the limit; nil exempts nobody.
	isServer func(ctx context.Context) bool
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; idle buckets are swept first.
const maxBuckets = 10000

func newRateLimiter(perSecond, burst int) *rateLimiter {
	return &rateLimiter{rate: float64(perSecond), burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket.
func (l *rateLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute || len(l.buckets) >= maxBuckets {
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
		if len(l.buckets) >= maxBuckets {
			return false // under a flood of distinct clients, refuse newcomers
		}
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientKey is the caller's IP, and whether the call counts against the
// limit. Calls from other servers (forwarded requests, bootstrap checks)
// are exempt: a forwarded request was counted by the first server. Only a
// proven server is exempt (see Server.callerIsServer): the
// rollwave-forwarded-by metadata alone is a claim anyone can make.
func (l *rateLimiter) clientKey(ctx context.Context) (string, bool) {
	if l.isServer != nil && l.isServer(ctx) {
		return "", false
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown", true
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String(), true
	}
	return host, true
}

func (l *rateLimiter) check(ctx context.Context, method string) error {
	if !strings.HasPrefix(method, "/rollwave.v1.OperatorService/") {
		return nil
	}
	key, limited := l.clientKey(ctx)
	if !limited || l.allow(key) {
		return nil
	}
	return status.Errorf(codes.ResourceExhausted, "rate limit: more than %.0f operator requests per second (burst %.0f) from %s; slow down and retry", l.rate, l.burst, key)
}

// peerRole is the role of the caller's verified client certificate. The
// TLS authorizer may not have run yet (the limiter comes first in the
// chain), so the certificate is read from the peer when the context does
// not carry the role.
func peerRole(ctx context.Context) (tlsutil.Role, bool) {
	if r, ok := tlsutil.RoleFromContext(ctx); ok {
		return r, true
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", false
	}
	r, err := tlsutil.PeerRole(info.State)
	return r, err == nil
}

// callerIsServer reports whether the caller is another coordinator. With
// TLS that is a verified certificate of role server, nothing else. Without
// TLS there is no identity to check; a caller counts as a server when it
// says it forwards (rollwave-forwarded-by) and calls from the IP address
// of a server in the raft configuration: a follower's forwarded traffic
// (its clients' combined requests) is then not throttled as one client,
// while a client anywhere else cannot bypass the limit by setting the
// metadata. (A local process on a server host still can; a cluster
// without TLS trusts its network, and docs/security.md says so.)
func (s *Server) callerIsServer(ctx context.Context) bool {
	if s.tls != nil {
		r, ok := peerRole(ctx)
		return ok && r == tlsutil.RoleServer
	}
	if md, ok := metadata.FromIncomingContext(ctx); !ok || len(md.Get(forwardedKey)) == 0 {
		return false
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	ip := remoteIP(p.Addr)
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		host, _, err := net.SplitHostPort(string(srv.Address))
		if err != nil {
			continue
		}
		if a := net.ParseIP(host); a != nil && a.String() == ip {
			return true
		}
	}
	return false
}

func (l *rateLimiter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := l.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (l *rateLimiter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := l.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
