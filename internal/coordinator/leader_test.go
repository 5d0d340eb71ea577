package coordinator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
)

// TestLeaderWorkStartsBeforeTheGossipAnnouncement: agents reconnect the
// moment gossip says a server leads, so a new leader's work (host writer,
// orchestrator) must already run then; the announcement follows.
func TestLeaderWorkStartsBeforeTheGossipAnnouncement(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	old := c.Leader(10 * time.Second)

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
	nl := c.Leader(10 * time.Second)
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
