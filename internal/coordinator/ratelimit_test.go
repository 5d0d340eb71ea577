package coordinator

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(10, 5)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	from := func(ip string) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
	}
	const op = "/rollwave.v1.OperatorService/ListReleases"
	// The burst passes, the next request is refused with ResourceExhausted
	// naming the address.
	for i := 0; i < 5; i++ {
		if err := l.check(from("10.0.0.1"), op); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	err := l.check(from("10.0.0.1"), op)
	if status.Code(err) != codes.ResourceExhausted || !containsAll(err.Error(), "10.0.0.1", "rate limit") {
		t.Fatalf("want ResourceExhausted naming the client, got %v", err)
	}
	// Another client has its own bucket.
	if err := l.check(from("10.0.0.2"), op); err != nil {
		t.Fatalf("other client: %v", err)
	}
	// Tokens refill at the rate: 100ms later one more request passes.
	now = now.Add(100 * time.Millisecond)
	if err := l.check(from("10.0.0.1"), op); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	// Agent sessions and calls from proven servers are never limited.
	l.isServer = func(ctx context.Context) bool { return ctx.Value(serverKey{}) != nil }
	for i := 0; i < 20; i++ {
		if err := l.check(from("10.0.0.1"), "/rollwave.v1.AgentService/Session"); err != nil {
			t.Fatalf("agent session limited: %v", err)
		}
		fwd := metadata.NewIncomingContext(from("10.0.0.1"), metadata.Pairs(forwardedKey, "c2"))
		if err := l.check(context.WithValue(fwd, serverKey{}, true), op); err != nil {
			t.Fatalf("forwarded request limited: %v", err)
		}
	}
	// The forwarded-by metadata alone exempts nobody (issue 11 item 8).
	fwd := metadata.NewIncomingContext(from("10.0.0.1"), metadata.Pairs(forwardedKey, "c2"))
	if err := l.check(fwd, op); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("metadata without a server identity: want ResourceExhausted, got %v", err)
	}
}

type serverKey struct{}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
