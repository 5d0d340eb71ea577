package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// attackerIP is another loopback address: the attacker's connections are
// counted apart from the legitimate client's (127.0.0.1).
var attackerIP = net.ParseIP("127.0.0.2")

// rawConnFrom opens a TCP connection from ip that sends nothing. It
// returns nil when the server reset it before the dial returned (a
// connection over a cap, closed as soon as it is accepted).
func rawConnFrom(t *testing.T, ip net.IP, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server has closed c (a read returns
// EOF or a reset rather than timing out within wait).
func closedByServer(c net.Conn, wait time.Duration) bool {
	if c == nil {
		return true // reset while dialing
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 256)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // the server's HTTP/2 preface/settings, if any
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return true
	}
}

func limitsOption(lim coordinator.Limits) coordtest.Option {
	return func(_ int, c *coordinator.Config) { c.Limits = lim }
}

func statusOK(t *testing.T, client rollwavev1.OperatorServiceClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Status(ctx, &rollwavev1.StatusRequest{}); err != nil {
		t.Fatalf("legitimate client not served: %v", err)
	}
}

// Issue 11 item 7: connections over the per-client cap are closed as soon
// as they are accepted, the ones within it stay, and a legitimate client
// from another address is served throughout. A freed slot is reusable.
func TestSecurityConnectionExhaustionPerClientCap(t *testing.T) {
	lim := coordinator.DefaultLimits()
	lim.RPCMaxConnsPerClient = 5
	lim.RPCHandshakeTimeout = time.Minute // not what this test is about
	c := coordtest.NewCluster(t, 1, limitsOption(lim))
	s := c.Leader(30 * time.Second)
	addr := s.GRPCAddr()
	legit := c.Client(s)
	statusOK(t, legit)

	var held []net.Conn
	for i := 0; i < 5; i++ {
		h := rawConnFrom(t, attackerIP, addr)
		if h == nil {
			t.Fatalf("connection %d within the cap was reset", i+1)
		}
		held = append(held, h)
	}
	// Held connections are counted once accepted; wait until they are
	// (the server sends its HTTP/2 settings on an accepted plaintext conn
	// only after the preface, so count through the next check instead).
	for i := 0; i < 20; i++ {
		extra := rawConnFrom(t, attackerIP, addr)
		if !closedByServer(extra, 10*time.Second) {
			t.Fatalf("connection %d over the per-client cap of 5 was not closed", i+6)
		}
		statusOK(t, legit)
	}
	for i, h := range held {
		if closedByServer(h, 50*time.Millisecond) {
			t.Fatalf("connection %d within the cap was closed", i+1)
		}
	}
	// A slot given back is taken by the next connection.
	held[0].Close()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		again := rawConnFrom(t, attackerIP, addr)
		if closedByServer(again, 200*time.Millisecond) {
			return false, "a new connection is still refused after one was closed"
		}
		return true, ""
	})
	statusOK(t, legit)
}

// Issue 11 item 7: a connection that never completes its handshake is
// closed after rpc_handshake_timeout (grpc's default is 120s), and one
// that completed it but has no call open is closed after rpc_idle_timeout
// (grpc's default is never).
func TestSecurityConnectionExhaustionDeadlines(t *testing.T) {
	lim := coordinator.DefaultLimits()
	lim.RPCHandshakeTimeout = 500 * time.Millisecond
	lim.RPCIdleTimeout = time.Second
	c := coordtest.NewCluster(t, 1, limitsOption(lim))
	s := c.Leader(30 * time.Second)
	addr := s.GRPCAddr()

	var idle []net.Conn
	for i := 0; i < 10; i++ {
		ic := rawConnFrom(t, attackerIP, addr)
		if ic == nil {
			t.Fatalf("connection %d was reset at once (no cap applies here)", i+1)
		}
		idle = append(idle, ic)
	}
	// Half a preface is not a handshake either.
	if _, err := idle[0].Write([]byte("PRI * HTTP/2.0\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i, ic := range idle {
		if !closedByServer(ic, 30*time.Second) {
			t.Fatalf("never-handshaked connection %d still open after %s", i, time.Since(start))
		}
	}
	statusOK(t, c.Client(s))

	// A real client that made one call and then stays idle is sent away.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	statusOK(t, rollwavev1.NewOperatorServiceClient(cc))
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		st := cc.GetState()
		return st == connectivity.Idle, fmt.Sprintf("client connection is %s, want IDLE after the server's GOAWAY", st)
	})
	// It reconnects when it needs to.
	statusOK(t, rollwavev1.NewOperatorServiceClient(cc))
}

// Issue 11 item 8: the rollwave-forwarded-by metadata exempts a caller
// from the operator rate limit only when its certificate says server. A
// cli certificate that sets it is limited; a follower's forwarding works.
func TestSecurityRateLimitForwardedMetadataNeedsServerCert(t *testing.T) {
	ca, certs := newPKI(t)
	c := coordtest.NewCluster(t, 3, func(i int, cfg *coordinator.Config) {
		cfg.TLS = tlsConfig(ca, certs[tlsutil.RoleServer])
		cfg.OperatorRateLimit, cfg.OperatorRateBurst = 1, 1
	})
	leader := c.Leader(30 * time.Second)
	follower := c.Followers()[0]
	cliCfg := tlsConfig(ca, certs[tlsutil.RoleCLI])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	spoof := dialTLS(t, leader.GRPCAddr(), cliCfg, tlsutil.RoleCLI)
	fctx := metadata.AppendToOutgoingContext(ctx, "rollwave-forwarded-by", "c2")
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		_, err := spoof.ListReleases(fctx, &rollwavev1.ListReleasesRequest{})
		switch status.Code(err) {
		case codes.OK:
		case codes.ResourceExhausted:
			limited = true
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if !limited {
		t.Fatal("a cli certificate setting rollwave-forwarded-by was never rate limited")
	}
	// The leader's bucket for 127.0.0.1 is empty now; a write through the
	// follower is forwarded with the follower's server certificate and is
	// not limited by it.
	viaFollower := dialTLS(t, follower.GRPCAddr(), cliCfg, tlsutil.RoleCLI)
	if _, err := viaFollower.SetCell(ctx, &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "edge", Criticality: "low"}}); err != nil {
		t.Fatalf("write forwarded by a follower: %v", err)
	}
}

// Without TLS there is no certificate: the metadata exempts only callers
// from the IP address of a raft server (all of them are on 127.0.0.1
// here); the same call from 127.0.0.2 is limited.
func TestSecurityRateLimitForwardedMetadataWithoutTLS(t *testing.T) {
	c := coordtest.NewCluster(t, 1, func(i int, cfg *coordinator.Config) {
		cfg.OperatorRateLimit, cfg.OperatorRateBurst = 1, 1
	})
	s := c.Leader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fctx := metadata.AppendToOutgoingContext(ctx, "rollwave-forwarded-by", "c2")

	from := func(ip net.IP) rollwavev1.OperatorServiceClient {
		cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
				return d.DialContext(ctx, "tcp", a)
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return rollwavev1.NewOperatorServiceClient(cc)
	}
	stranger, peerHost := from(attackerIP), from(net.ParseIP("127.0.0.1"))
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		_, err := stranger.ListReleases(fctx, &rollwavev1.ListReleasesRequest{})
		limited = status.Code(err) == codes.ResourceExhausted
	}
	if !limited {
		t.Fatal("a client on 127.0.0.2 setting rollwave-forwarded-by was never rate limited")
	}
	for i := 0; i < 20; i++ {
		if _, err := peerHost.ListReleases(fctx, &rollwavev1.ListReleasesRequest{}); err != nil {
			t.Fatalf("forwarded call %d from a raft server's address: %v", i, err)
		}
	}
}

// Issue 11 item 12: a restarted server that has not caught up with the
// leader says so, instead of "ACLs are enabled but not bootstrapped yet",
// and serves the token once it has caught up.
func TestSecurityRestartedFollowerSaysCatchingUpNotUnbootstrapped(t *testing.T) {
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	leader := c.Leader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	boot, err := c.Client(leader).ACLBootstrap(ctx, &rollwavev1.ACLBootstrapRequest{})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	tctx := coordtest.WithToken(ctx, boot.GetSecret())
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, s := range c.Running() {
			if done, _ := s.FSM().State().ACLBootstrapped(); !done {
				return false, s.NodeID() + " has not applied the bootstrap"
			}
		}
		return true, ""
	})
	// Stop every server, then start one alone: it has the bootstrap in
	// its log but no leader to tell it the entry is committed.
	for i := range c.Servers {
		c.Kill(i)
	}
	s := c.Start(0)
	_, err = c.Client(s).ListReleases(tctx, &rollwavev1.ListReleasesRequest{})
	if status.Code(err) != codes.Unavailable || strings.Contains(err.Error(), "not bootstrapped") ||
		!strings.Contains(err.Error(), "cannot tell yet whether they were bootstrapped") {
		t.Fatalf("restarted server without a leader: want Unavailable saying it cannot tell yet, got %v", err)
	}
	// With a second server there is a leader again; the restarted server
	// catches up and serves the token.
	c.Start(1)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		_, err := c.Client(s).ListReleases(tctx, &rollwavev1.ListReleasesRequest{})
		if err != nil && strings.Contains(err.Error(), "not bootstrapped") {
			t.Fatalf("a restarted server said ACLs are not bootstrapped: %v", err)
		}
		return err == nil, fmt.Sprint(err)
	})
}

// startOneHostRelease writes, through s's raft, host h1 (cell a) and a
// running release "r" of app api with one phase on h1 (60 s bake).
func startOneHostRelease(t *testing.T, s *coordinator.Server) {
	t.Helper()
	now := time.Now().UnixNano()
	for _, step := range []struct {
		t   raftfsm.MessageType
		msg proto.Message
	}{
		{raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: []*rollwavev1.Host{{Id: "h1", Cell: "a"}}}},
		{raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Actor: "test", Release: &rollwavev1.Release{
			Id: "r", Spec: &rollwavev1.ReleaseSpec{Name: "r", App: "api", Version: "2"},
			Phases: []*rollwavev1.Phase{{Index: 0, Hosts: []string{"h1"}, Cells: []string{"a"}, BakeMs: 60_000}}}}},
		{raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{TimeUnixNano: now, ReleaseId: "r",
			State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, Actor: "test", CurrentPhase: -1}},
	} {
		if _, err := s.Apply(step.t, step.msg); err != nil {
			t.Fatalf("%v: %v", step.t, err)
		}
	}
}

// Issue 11 item 12: a release rolling back whose host never answers (it
// would sit there until the revert timeout, minutes) can be aborted.
func TestSecurityAbortReleaseWhileRollingBack(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	startOneHostRelease(t, s)
	// The orchestrator assigns h1, which has no agent to answer.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return s.FSM().State().Assignment("h1", "api") != nil, "h1 not assigned yet"
	})
	client := c.Client(s)
	if _, err := client.RollbackRelease(ctx, &rollwavev1.ReleaseActionRequest{Id: "r"}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	resp, err := client.AbortRelease(ctx, &rollwavev1.ReleaseActionRequest{Id: "r", Reason: "give up the rollback"})
	if err != nil {
		t.Fatalf("abort while rolling back: %v", err)
	}
	if r := resp.GetRelease(); r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_ABORTED || r.GetReason() != "give up the rollback" {
		t.Fatalf("release after abort = %v", r)
	}
}

// The idle timeout and the keepalive policy do not touch agents: a
// session is an open stream, so an agent stays connected, on the same
// session, across several idle timeouts.
func TestSecurityIdleTimeoutKeepsAgentSessions(t *testing.T) {
	lim := coordinator.DefaultLimits()
	lim.RPCIdleTimeout = time.Second
	c := coordtest.NewCluster(t, 1, limitsOption(lim))
	s := c.Leader(30 * time.Second)
	a := agenttest.Start(t, "h1", "edge", agenttest.Options{Join: s.GossipAddr()})
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		return a.Connected() && s.AgentConnected("h1"), "agent not connected yet"
	})
	until := time.Now().Add(3 * lim.RPCIdleTimeout)
	testutil.WaitFor(t, 10*lim.RPCIdleTimeout, func() (bool, string) {
		if !a.Connected() || !s.AgentConnected("h1") {
			t.Fatal("the agent's session was dropped by the idle timeout")
		}
		return time.Now().After(until), "watching the session"
	})
}
