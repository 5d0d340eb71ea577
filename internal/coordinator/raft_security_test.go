package coordinator_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func tlsCluster(t *testing.T, ca string, certs map[tlsutil.Role][2]string) *coordtest.Cluster {
	return coordtest.NewCluster(t, 3, func(i int, cfg *coordinator.Config) {
		cfg.TLS = tlsConfig(ca, certs[tlsutil.RoleServer])
	})
}

// quietIndexes waits until every running server has the same last raft
// index and has applied it, and returns it per node.
func quietIndexes(t *testing.T, c *coordtest.Cluster) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		var first uint64
		for i, s := range c.Running() {
			last, applied := s.Raft().LastIndex(), s.Raft().AppliedIndex()
			seen = append(seen, fmt.Sprintf("%s last=%d applied=%d", s.NodeID(), last, applied))
			if i == 0 {
				first = last
			}
			if last != applied || last != first {
				ok = false
			}
			out[s.NodeID()] = last
		}
		return ok, strings.Join(seen, ", ")
	})
	return out
}

// assertNotForged checks that no server's log grew and no server holds the
// forged token.
func assertNotForged(t *testing.T, c *coordtest.Cluster, before map[string]uint64, accessor string) {
	t.Helper()
	for _, s := range c.Running() {
		if got := s.Raft().LastIndex(); got != before[s.NodeID()] {
			t.Errorf("%s: raft last index %d, was %d before the forgery", s.NodeID(), got, before[s.NodeID()])
		}
		if s.FSM().State().ACLToken(accessor) != nil {
			t.Errorf("%s holds the forged admin token %s", s.NodeID(), accessor)
		}
	}
}

// writeCell writes a cell through s with a cli certificate, retrying
// while leadership settles (as the CLI's user would).
func writeCell(t *testing.T, s *coordinator.Server, cli *tlsutil.Config, name string) {
	t.Helper()
	client := dialTLS(t, s.GRPCAddr(), cli, tlsutil.RoleCLI)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		_, err := client.SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: name, Criticality: "low"}})
		return err == nil, fmt.Sprintf("write %s through %s: %v", name, s.NodeID(), err)
	})
}

// TestSecurityRaftRequiresServerCert (issue 11, item 1): with TLS
// configured, the raft port takes only mutual TLS with a server
// certificate. Someone speaking raft's own transport to it — in plaintext,
// or over TLS with an agent's or the CLI's certificate from the cluster's
// own CA — gets an error and appends nothing on any server. Before, the
// plaintext forgery appended an admin ACL token on the servers.
func TestSecurityRaftRequiresServerCert(t *testing.T) {
	ca, certs := newPKI(t)
	c := tlsCluster(t, ca, certs)
	before := quietIndexes(t, c)

	plain, err := coordtest.PlainRaftTransport()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	attackers := []struct {
		name  string
		trans *raft.NetworkTransport
	}{{"plaintext", plain}}
	for _, role := range []tlsutil.Role{tlsutil.RoleAgent, tlsutil.RoleCLI} {
		tc, err := tlsConfig(ca, certs[role]).ClientTLSConfig(role)
		if err != nil {
			t.Fatal(err)
		}
		trans, err := coordtest.TLSRaftTransport(tc)
		if err != nil {
			t.Fatal(err)
		}
		defer trans.Close()
		attackers = append(attackers, struct {
			name  string
			trans *raft.NetworkTransport
		}{string(role) + " certificate", trans})
	}

	for _, a := range attackers {
		data, accessor, err := coordtest.ForgedAdminEntry(strings.ReplaceAll(a.name, " ", "-"), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.Running() {
			err := coordtest.ForgeAppend(a.trans, s.RaftAddr(), data)
			if err == nil || errors.Is(err, coordtest.ErrForgeryRefusedByRaft) {
				t.Errorf("%s to %s: the forged AppendEntries reached raft: %v", a.name, s.NodeID(), err)
			} else {
				t.Logf("%s to %s: refused: %v", a.name, s.NodeID(), err)
			}
		}
		assertNotForged(t, c, before, accessor)
	}

	// The cluster is still whole: it takes writes.
	writeCell(t, c.Running()[0], tlsConfig(ca, certs[tlsutil.RoleCLI]), "after")

	// Control: the same forgery with a server certificate — which servers
	// trust by design — goes through, so the refusals above are the
	// transport's doing and not a broken forgery.
	stc, err := tlsConfig(ca, certs[tlsutil.RoleServer]).ClientTLSConfig(tlsutil.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	srvTrans, err := coordtest.TLSRaftTransport(stc)
	if err != nil {
		t.Fatal(err)
	}
	defer srvTrans.Close()
	target := c.Followers()[0]
	data, accessor, err := coordtest.ForgedAdminEntry("control", false)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		err := coordtest.ForgeAppend(srvTrans, target.RaftAddr(), data)
		return err == nil && target.FSM().State().ACLToken(accessor) != nil, fmt.Sprintf("control forgery: %v", err)
	})
}

// TestSecurityRaftTLSLeaderFailover (issue 11, item 1): over mutual TLS
// the cluster elects, replicates, survives a leader kill — with the early
// campaign (failover.go) still working: its probe only opens TCP — and a
// restarted server catches up.
func TestSecurityRaftTLSLeaderFailover(t *testing.T) {
	ca, certs := newPKI(t)
	c := tlsCluster(t, ca, certs)
	old := c.Leader(30 * time.Second)
	cliCfg := tlsConfig(ca, certs[tlsutil.RoleCLI])
	write := func(s *coordinator.Server, name string) { writeCell(t, s, cliCfg, name) }
	write(c.Followers()[0], "before")

	const slow = 5 * time.Second
	for _, s := range c.Running() {
		rc := s.Raft().ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = slow, slow
		if err := s.Raft().ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
	oi := c.Index(old)
	c.Kill(oi)
	start := time.Now()
	nl := c.Leader(30 * time.Second)
	took := time.Since(start)
	t.Logf("%s leads %s after %s was stopped", nl.NodeID(), took.Round(time.Millisecond), old.NodeID())
	if took >= slow {
		t.Fatalf("new leader after %s: the early campaign did not work over TLS (heartbeat timeout %s)", took, slow)
	}
	write(nl, "after")
	restarted := c.Start(oi)
	for _, s := range c.Running() {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			st := s.FSM().State()
			return st.Cell("before") != nil && st.Cell("after") != nil, fmt.Sprintf("%s has %d cells", s.NodeID(), len(st.Cells()))
		})
	}
	if restarted.FSM().State().Cell("after") == nil {
		t.Fatal("the restarted server did not catch up")
	}
}

// A server configured with an agent certificate cannot run raft over TLS:
// New refuses it, naming the certificate.
func TestSecurityRaftTLSNeedsServerCertificate(t *testing.T) {
	ca, certs := newPKI(t)
	cfg := coordtest.FastConfig(t, "c1")
	cfg.BootstrapExpect = 1
	cfg.TLS = tlsConfig(ca, certs[tlsutil.RoleAgent])
	s, err := coordinator.New(cfg)
	if err == nil {
		s.Shutdown()
		t.Fatal("a server with an agent certificate started")
	}
	if !strings.Contains(err.Error(), certs[tlsutil.RoleAgent][0]) {
		t.Fatalf("error does not name the certificate: %v", err)
	}
}
