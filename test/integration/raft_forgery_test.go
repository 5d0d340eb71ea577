//go:build e2e

package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestSecurityRaftForgery (issue 11, item 1) plays an attacker on the
// fleet's network against the secured real-host cluster (the `rollwave
// server` binary, mutual TLS, gossip key, ACLs, as docs/security.md
// says): with hashicorp/raft's own transport it tries to append a forged
// UpsertACLToken entry — an admin token — to every coordinator's raft
// log, in plaintext and over TLS with the fleet's agent and CLI
// certificates. Each attempt fails at the transport, and every
// coordinator's raft last index and token list stay as they were. A
// control with the server certificate (which servers trust by design)
// shows the forgery itself works.
func TestSecurityRaftForgery(t *testing.T) {
	timed(t)
	f := fleet.New(t, fleet.Options{})
	cs := f.StartCoordinators(3)
	caFile, _, _, secured := cs.Secured("server")
	if !secured {
		t.Skip("e2e: skipping: the fleet runs in the clear (ROLLWAVE_E2E_INSECURE); the raft port is only protected with TLS")
	}
	cs.WaitLeader(60 * time.Second)
	before := quietRaftIndexes(t, cs)

	plain, err := coordtest.PlainRaftTransport()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	type attacker struct {
		name  string
		trans *raft.NetworkTransport
	}
	attackers := []attacker{{"plaintext", plain}}
	for _, role := range []string{"agent", "cli"} {
		_, cert, key, _ := cs.Secured(role)
		trans, err := coordtest.TLSRaftTransport(clientTLS(t, caFile, cert, key, tlsutil.Role(role)))
		if err != nil {
			t.Fatal(err)
		}
		defer trans.Close()
		attackers = append(attackers, attacker{role + "-certificate", trans})
	}
	for _, a := range attackers {
		data, accessor, err := coordtest.ForgedAdminEntry(a.name, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Nodes() {
			err := coordtest.ForgeAppend(a.trans, c.Raft, data)
			if err == nil || errors.Is(err, coordtest.ErrForgeryRefusedByRaft) {
				t.Errorf("%s to %s (%s): the forged AppendEntries reached raft: %v", a.name, c.Name, c.Raft, err)
			} else {
				t.Logf("%s to %s: refused: %v", a.name, c.Name, err)
			}
		}
		for _, c := range cs.Nodes() {
			st, err := cs.Status(c)
			if err != nil {
				t.Fatal(err)
			}
			if st.GetLastIndex() != before[c.Name] {
				t.Errorf("%s: raft last index %d, was %d before the %s forgery", c.Name, st.GetLastIndex(), before[c.Name], a.name)
			}
			if tokens := tokenList(t, cs, c); strings.Contains(tokens, accessor) {
				t.Errorf("%s holds the forged token %s:\n%s", c.Name, accessor, tokens)
			}
		}
	}

	// Control: with the server certificate the same forgery goes through
	// (to a follower), so the refusals above are the transport's.
	_, scert, skey, _ := cs.Secured("server")
	strans, err := coordtest.TLSRaftTransport(clientTLS(t, caFile, scert, skey, tlsutil.RoleServer))
	if err != nil {
		t.Fatal(err)
	}
	defer strans.Close()
	leader := cs.WaitLeader(30 * time.Second)
	var target *fleet.Coordinator
	for _, c := range cs.Nodes() {
		if c != leader {
			target = c
			break
		}
	}
	data, accessor, err := coordtest.ForgedAdminEntry("control", true)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		err := coordtest.ForgeAppend(strans, target.Raft, data)
		return err == nil && strings.Contains(tokenList(t, cs, target), accessor), fmt.Sprintf("control forgery to %s: %v", target.Name, err)
	})
}

// quietRaftIndexes waits until every coordinator reports the same raft
// last index twice in a row and returns it per coordinator.
func quietRaftIndexes(t *testing.T, cs *fleet.Coordinators) map[string]uint64 {
	t.Helper()
	var prev map[string]uint64
	out := map[string]uint64{}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		cur := map[string]uint64{}
		var seen []string
		for _, c := range cs.Nodes() {
			st, err := cs.Status(c)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", c.Name, err)
			}
			cur[c.Name] = st.GetLastIndex()
			seen = append(seen, fmt.Sprintf("%s=%d/%d", c.Name, st.GetLastIndex(), st.GetAppliedIndex()))
		}
		same := prev != nil
		for n, v := range cur {
			if prev[n] != v || v != cur[cs.Nodes()[0].Name] {
				same = false
			}
		}
		prev = cur
		out = cur
		return same, "last/applied: " + strings.Join(seen, " ")
	})
	return out
}

func tokenList(t *testing.T, cs *fleet.Coordinators, c *fleet.Coordinator) string {
	t.Helper()
	out, errOut, err := cs.CLIAt(c, "acl", "token", "list", "-json")
	if err != nil {
		t.Fatalf("acl token list at %s: %v: %s", c.Name, err, errOut)
	}
	return out
}

func clientTLS(t *testing.T, ca, cert, key string, role tlsutil.Role) *tls.Config {
	t.Helper()
	c := tlsutil.DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = ca, cert, key
	tc, err := c.ClientTLSConfig(role)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}
