package coordinator_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// newPKI makes a CA and one certificate per role in a temp dir.
func newPKI(t *testing.T) (ca string, certs map[tlsutil.Role][2]string) {
	t.Helper()
	dir := t.TempDir()
	gen, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	certs = map[tlsutil.Role][2]string{}
	for _, r := range []tlsutil.Role{tlsutil.RoleServer, tlsutil.RoleAgent, tlsutil.RoleCLI} {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: gen.CertFile, CAKeyFile: gen.KeyFile, Kind: r, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		certs[r] = [2]string{g.CertFile, g.KeyFile}
	}
	return gen.CertFile, certs
}

func tlsConfig(ca string, cert [2]string) *tlsutil.Config {
	c := tlsutil.DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = ca, cert[0], cert[1]
	return &c
}

func dialTLS(t *testing.T, addr string, cfg *tlsutil.Config, role tlsutil.Role) rollwavev1.OperatorServiceClient {
	t.Helper()
	opt := grpc.WithTransportCredentials(insecure.NewCredentials())
	if cfg != nil {
		tc, err := cfg.ClientTLSConfig(role)
		if err != nil {
			t.Fatal(err)
		}
		opt = grpc.WithTransportCredentials(credentials.NewTLS(tc))
	}
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rollwavev1.NewOperatorServiceClient(conn)
}

// A cluster with mutual TLS and gossip encryption on: servers form it,
// forward writes, an agent registers; the wrong callers are refused.
func TestClusterWithMutualTLS(t *testing.T) {
	ca, certs := newPKI(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	c := coordtest.NewCluster(t, 3, func(i int, cfg *coordinator.Config) {
		cfg.TLS = tlsConfig(ca, certs[tlsutil.RoleServer])
		cfg.GossipKey = key
	})
	leader := c.Leader(30 * time.Second)
	follower := c.Followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The operator with a cli certificate can write through a follower
	// (forwarded to the leader over mutual TLS).
	cli := dialTLS(t, follower.GRPCAddr(), tlsConfig(ca, certs[tlsutil.RoleCLI]), tlsutil.RoleCLI)
	if _, err := cli.SetCell(ctx, &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "edge", Criticality: "low"}}); err != nil {
		t.Fatalf("cli write through follower over TLS: %v", err)
	}

	// A client without any certificate gets no answer.
	plain := dialTLS(t, leader.GRPCAddr(), nil, "")
	if _, err := plain.Status(ctx, &rollwavev1.StatusRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: want Unavailable (handshake refused), got %v", err)
	}
	// A certificate from another CA is refused.
	otherCA, otherCerts := newPKI(t)
	stranger := dialTLS(t, leader.GRPCAddr(), tlsConfig(otherCA, otherCerts[tlsutil.RoleCLI]), tlsutil.RoleCLI)
	if _, err := stranger.Status(ctx, &rollwavev1.StatusRequest{}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// An agent certificate cannot call the operator API.
	asAgent := dialTLS(t, leader.GRPCAddr(), tlsConfig(ca, certs[tlsutil.RoleAgent]), tlsutil.RoleAgent)
	if _, err := asAgent.SubmitRelease(ctx, &rollwavev1.SubmitReleaseRequest{SourceName: "x.hcl", Source: []byte("x")}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("agent cert on the operator API: want PermissionDenied, got %v", err)
	}

	// An agent with its certificate and the gossip key registers.
	a := agenttest.Start(t, "h1", "edge", agenttest.Options{Join: leader.GossipAddr(), TLS: tlsConfig(ca, certs[tlsutil.RoleAgent]), GossipKey: key})
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		l := c.Leader(5 * time.Second)
		return a.Connected() && l.AgentConnected("h1"), fmt.Sprintf("agent connected=%v", a.Connected())
	})
	// Gossip key rotation over the API: install, use, remove the old key.
	ring, err := cli.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: "list"})
	if err != nil || len(ring.GetKeys()) != 1 {
		t.Fatalf("keyring list: %v %v", ring, err)
	}
	oldKey := ring.GetPrimary()
	newKey := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	for _, op := range []string{"install", "use"} {
		if _, err := cli.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: op, Key: newKey}); err != nil {
			t.Fatalf("keyring %s: %v", op, err)
		}
	}
	ring, err = cli.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: "remove", Key: oldKey})
	if err != nil || len(ring.GetKeys()) != 1 || ring.GetPrimary() != newKey {
		t.Fatalf("after rotation: %v %v", ring, err)
	}
	// The pool still works after the rotation: every member agrees on it.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, s := range c.Running() {
			st, err := s.Gossip().ListKeys()
			if err != nil || len(st.Keys) != 1 || base64.StdEncoding.EncodeToString(st.Primary) != newKey {
				return false, fmt.Sprintf("%s keyring %d keys, err %v", s.NodeID(), len(st.Keys), err)
			}
		}
		return true, ""
	})
	if _, err := cli.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: "use", Key: "not base64!"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad key: want InvalidArgument, got %v", err)
	}

	// A message near the 8 MiB limit still arrives whole over TLS (the
	// read buffer is 4 KiB): the spec is read, then refused as a spec.
	big := []byte("# " + strings.Repeat("x", 7<<20) + "\n")
	if _, err := cli.SubmitRelease(ctx, &rollwavev1.SubmitReleaseRequest{SourceName: "big.hcl", Source: big}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("7 MiB spec over TLS: want InvalidArgument from the spec parser, got %v", err)
	}

	// SIGHUP-style reload keeps serving.
	if err := leader.ReloadTLS(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := cli.Status(ctx, &rollwavev1.StatusRequest{}); err != nil {
		t.Fatalf("after reload: %v", err)
	}
}

// A server with a wrong gossip key never joins the pool.
func TestWrongGossipKeyCannotJoin(t *testing.T) {
	c := coordtest.NewCluster(t, 1, func(i int, cfg *coordinator.Config) { cfg.GossipKey = []byte("0123456789abcdef") })
	leader := c.Leader(5 * time.Second)
	cfg := coordtest.FastConfig(t, "intruder")
	cfg.GossipKey = []byte("fedcba9876543210")
	cfg.Join = []string{leader.GossipAddr()}
	s, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	// Give it the time a join takes with the right key, several times over.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range leader.Gossip().Members() {
			if strings.Contains(m.Name, "intruder") {
				t.Fatalf("a member with the wrong gossip key joined: %+v", m)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
