package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// aliveServers returns the node ids s sees alive in gossip.
func aliveServers(s *coordinator.Server) map[string]bool {
	out := map[string]bool{}
	for _, m := range s.Gossip().Servers() {
		out[m.Meta.NodeID] = true
	}
	return out
}

// TestSecurityRejoinFromRaftPeers (issue 11, item 10): a server restarted
// with only its own address in join (as the docs' try-out loop does) is
// back in the others' gossip within a deadline, found through the raft
// configuration and the servers it last saw; and while it comes back —
// and then leads — no server ever advertises the leader with an empty
// address. Before, it stayed alone in gossip, and the others answered
// the leader c1 with an empty address for as long as it led.
func TestSecurityRejoinFromRaftPeers(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	const vi = 0 // c1: the server the others joined through
	victim := c.Servers[vi]
	// It has seen the others (and written them down).
	known := filepath.Join(c.Configs[vi].DataDir, "gossip", "servers.json")
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(known)
		return strings.Contains(string(b), `"c2"`) && strings.Contains(string(b), `"c3"`), "servers.json: " + string(b)
	})
	c.Kill(vi)
	// The others declare it dead, and stop gossiping to it (memberlist
	// does for GossipToTheDeadTime, 1 s with GossipFast, and then never
	// calls on it again).
	const pastGossipToTheDead = 3 * time.Second
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for _, s := range c.Running() {
			for _, m := range s.Gossip().Members() {
				if m.Name == victim.NodeID() {
					seen = append(seen, fmt.Sprintf("%s sees %s %s since %s", s.NodeID(), m.Name, m.Status, time.Since(m.Since).Round(time.Millisecond)))
					if m.Status == gossip.StatusAlive || time.Since(m.Since) < pastGossipToTheDead {
						ok = false
					}
				}
			}
		}
		return ok, strings.Join(seen, "; ")
	})

	// Watch what every running server advertises as the leader's address.
	var (
		mu         sync.Mutex
		violations []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, s := range c.Running() {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				st, err := c.Client(s).Status(cctx, &rollwavev1.StatusRequest{})
				cancel()
				if err == nil && st.GetLeaderId() != "" && st.GetLeaderAddress() == "" {
					mu.Lock()
					violations = append(violations, fmt.Sprintf("%s: leader %s with an empty address", st.GetNodeId(), st.GetLeaderId()))
					mu.Unlock()
				}
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	c.Configs[vi].Join = []string{c.Configs[vi].GossipAddr}
	restarted := c.Start(vi)
	// Make it the leader, as in the report (it led while out of gossip).
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		if restarted.IsLeader() {
			return true, ""
		}
		l := c.Leader(30 * time.Second)
		if l == restarted {
			return true, ""
		}
		if restarted.Raft().AppliedIndex() < l.Raft().AppliedIndex() {
			return false, "restarted server catching up"
		}
		err := l.Raft().LeadershipTransferToServer(raft.ServerID(restarted.NodeID()), raft.ServerAddress(restarted.RaftAddr())).Error()
		return false, fmt.Sprintf("leadership transfer to %s: %v", restarted.NodeID(), err)
	})
	// Back in everyone's gossip, and everyone's gossip in its.
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		var seen []string
		ok := true
		for _, s := range c.Running() {
			a := aliveServers(s)
			seen = append(seen, fmt.Sprintf("%s sees %v", s.NodeID(), a))
			if len(a) != 3 {
				ok = false
			}
		}
		return ok, strings.Join(seen, "; ")
	})
	// Everyone names it, at its address.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, s := range c.Running() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Client(s).Status(cctx, &rollwavev1.StatusRequest{})
			cancel()
			if err != nil || st.GetLeaderAddress() != restarted.GRPCAddr() {
				return false, fmt.Sprintf("%s: %v %v", s.NodeID(), st, err)
			}
		}
		return true, ""
	})
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("the leader was advertised with an empty address %d times, first: %s", len(violations), violations[0])
	}
}
