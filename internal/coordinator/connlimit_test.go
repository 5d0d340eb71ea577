package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 11 item 7: the listener's total cap holds whatever the client
// addresses, connections over it are closed at once (and logged, rate
// limited), and a slot given back is reused.
func TestSecurityConnectionExhaustionTotalCap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	ln := newLimitListener(inner, Limits{RPCMaxConns: 3}, slog.New(slog.NewTextHandler(&logs, nil)))
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			return nil // reset before the dial returned: refused
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var server []net.Conn
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if dial(ip) == nil {
			t.Fatalf("connection from %s within the cap refused", ip)
		}
		select {
		case c := <-accepted:
			server = append(server, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("connection from %s not accepted", ip)
		}
	}
	for i := 0; i < 5; i++ {
		if c := dial("127.0.0.4"); c != nil {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var ne net.Error
			if _, err := c.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("connection over the total cap of 3 not closed: %v", err)
			}
		}
	}
	select {
	case c := <-accepted:
		t.Fatalf("a connection over the cap reached the server: %s", c.RemoteAddr())
	default:
	}
	if total, _ := ln.counts("127.0.0.4"); total != 3 {
		t.Fatalf("open = %d, want 3", total)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(logs.String(), "limits.rpc_max_conns (3) reached"), "no log line naming the cap: " + logs.String()
	})
	if n := strings.Count(logs.String(), "refused gRPC connections"); n != 1 {
		t.Fatalf("%d log lines for 5 refusals within 10s, want 1 (rate limited)", n)
	}
	// Closing twice gives the slot back once.
	server[0].Close()
	server[0].Close()
	if total, _ := ln.counts(""); total != 2 {
		t.Fatalf("open after a close = %d, want 2", total)
	}
	if dial("127.0.0.4") == nil {
		t.Fatal("a freed slot was not reused")
	}
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("connection in the freed slot not accepted")
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Limits)
		want string
	}{
		{func(l *Limits) { l.RPCMaxConnsPerClient = -1 }, "limits.rpc_max_conns_per_client"},
		{func(l *Limits) { l.RPCMaxConns = -5 }, "limits.rpc_max_conns "},
		{func(l *Limits) { l.RPCHandshakeTimeout = 0 }, "limits.rpc_handshake_timeout"},
		{func(l *Limits) { l.RPCIdleTimeout = -time.Second }, "limits.rpc_idle_timeout"},
	} {
		l := DefaultLimits()
		tc.mut(&l)
		if err := l.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %q, got %v", tc.want, err)
		}
	}
	if err := DefaultLimits().validate(); err != nil {
		t.Fatal(err)
	}
}

// A panic in a gRPC handler becomes codes.Internal and an ERROR log line;
// the server keeps serving.
func TestSecurityHandlerPanicIsRecovered(t *testing.T) {
	var logs testutil.SyncBuffer
	s := &Server{cfg: Config{NodeID: "c1"}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := grpc.NewServer(append(s.recoveryOptions(),
		grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { panic("stream boom") }))...)
	// operatorService over a Server without state: Status dereferences
	// nil and panics.
	rollwavev1.RegisterOperatorServiceServer(srv, &operatorService{s: s})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		_, err := rollwavev1.NewOperatorServiceClient(cc).Status(ctx, &rollwavev1.StatusRequest{})
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "Status") {
			t.Fatalf("unary panic %d: want Internal naming the method, got %v", i, err)
		}
		err = cc.Invoke(ctx, "/x.Nope/Call", &rollwavev1.StatusRequest{}, &rollwavev1.StatusResponse{})
		if status.Code(err) != codes.Internal {
			t.Fatalf("stream panic %d: want Internal, got %v", i, err)
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "method=/rollwave.v1.OperatorService/Status") ||
		!strings.Contains(logs.String(), "stream boom") {
		t.Fatalf("log does not show the recovered panics:\n%s", logs.String())
	}
}
