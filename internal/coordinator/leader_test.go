package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
)

// TestLeaderWorkStartsBeforeTheGossipAnnouncement: agents reconnect the
// moment gossip says a server leads, so a new leader's work (host writer,
// orchestrator) must already run then; the announcement follows.
func TestLeaderWorkStartsBeforeTheGossipAnnouncement(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	old := c.Leader(30 * time.Second)

	var mu sync.Mutex
	flagAtHook := map[string]bool{} // node → its gossip leader flag when its hook ran
	for _, s := range c.Followers() {
		s.AddLeaderHook(func(_ context.Context, leader bool) {
			if !leader {
				return
			}
			mu.Lock()
			flagAtHook[s.NodeID()] = s.Gossip().LocalMeta().Leader
			mu.Unlock()
		})
	}
	c.Kill(c.Index(old))
	nl := c.Leader(30 * time.Second)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		_, ran := flagAtHook[nl.NodeID()]
		return ran && nl.Gossip().LocalMeta().Leader, fmt.Sprintf("hooks ran: %v; %s gossip leader flag %v", flagAtHook, nl.NodeID(), nl.Gossip().LocalMeta().Leader)
	})
	mu.Lock()
	defer mu.Unlock()
	if flagAtHook[nl.NodeID()] {
		t.Fatalf("%s announced itself as leader in gossip before its leader work started", nl.NodeID())
	}
}

// TestFollowersCampaignEarlyWhenTheLeaderProcessDies: with raft timeouts
// of 5 s a dead leader is normally replaced after 5-10 s; a leader whose
// process is gone closes its raft connections and refuses new ones, and
// the followers then campaign after leader_lease_timeout (100 ms here).
func TestFollowersCampaignEarlyWhenTheLeaderProcessDies(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	old := c.Leader(30 * time.Second)
	const slow = 5 * time.Second
	for _, s := range c.Running() {
		rc := s.Raft().ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = slow, slow
		if err := s.Raft().ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
	c.Kill(c.Index(old))
	start := time.Now()
	nl := c.Leader(30 * time.Second)
	took := time.Since(start)
	t.Logf("%s leads %s after %s was stopped", nl.NodeID(), took.Round(time.Millisecond), old.NodeID())
	if took >= slow {
		t.Fatalf("new leader after %s: not earlier than the %s heartbeat timeout", took, slow)
	}
	// The timeouts are back to what they were.
	for _, s := range c.Running() {
		testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
			rc := s.Raft().ReloadableConfig()
			return rc.HeartbeatTimeout == slow && rc.ElectionTimeout == slow,
				fmt.Sprintf("%s: heartbeat timeout %s, election timeout %s", s.NodeID(), rc.HeartbeatTimeout, rc.ElectionTimeout)
		})
	}
}

// TestPersistentBarrierFailureTransfersLeadership: a server that gains
// leadership but cannot pass a raft barrier starts no leader work, retries
// the barrier, and after barrierAttempts failures hands leadership to
// another voter, which then leads and runs the orchestrator.
func TestPersistentBarrierFailureTransfersLeadership(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	target := c.Followers()[0]

	var barriers, transfers, gains atomic.Int32
	target.SetLeaderSeams(coordinator.LeaderSeams{
		Barrier: func(time.Duration) error {
			barriers.Add(1)
			return errors.New("injected barrier failure")
		},
		LeadershipTransfer: func() error {
			transfers.Add(1)
			return target.Raft().LeadershipTransfer().Error()
		},
	})
	target.AddLeaderHook(func(_ context.Context, leader bool) {
		if leader {
			gains.Add(1)
		}
	})

	// Ask for the transfer at most every 3 s: a transfer cut short by a
	// step-down can leave hashicorp/raft's "transfer in progress" state
	// stuck (hashicorp/raft#696), and with it the server's Shutdown.
	var lastAsk time.Time
	var askErr error
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		if target.IsLeader() {
			return true, ""
		}
		if l := c.Leader(30 * time.Second); time.Since(lastAsk) > 3*time.Second && l != target {
			lastAsk = time.Now()
			// Raft may refuse while a transfer or election is in progress.
			askErr = l.Raft().LeadershipTransferToServer(raft.ServerID(target.NodeID()), raft.ServerAddress(target.RaftAddr())).Error()
		}
		return target.IsLeader(), fmt.Sprintf("transfer to %s: %v", target.NodeID(), askErr)
	})
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		l := c.Leader(30 * time.Second)
		return transfers.Load() >= 1 && l != target && l.Rollout().Enabled(),
			fmt.Sprintf("%d barriers failed and %d transfers on %s; %s leads (orchestrator enabled %v)",
				barriers.Load(), transfers.Load(), target.NodeID(), l.NodeID(), l.Rollout().Enabled())
	})
	if n := barriers.Load(); n < 3 {
		t.Fatalf("%s transferred leadership after %d failed barriers, want at least 3 attempts", target.NodeID(), n)
	}
	if n := gains.Load(); n != 0 {
		t.Fatalf("%s started leader work %d times without a successful barrier", target.NodeID(), n)
	}
	if target.Rollout().Enabled() {
		t.Fatalf("%s runs the orchestrator without leading", target.NodeID())
	}
}
