package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rollwave/rollwave/internal/gossip"
)

// JoinGossip makes the first k agents real memberlist members (role
// agent, production LAN timings) joined to the coordinators' gossip
// addresses. The rest of the fleet has no gossip: the planner counts a
// host that has a session as alive (fleetForPlanning), so sessions
// suffice, and k real members keep the coordinators' gossip work
// (probes, push/pull of the member list) in the measurement at a sampled
// scale. It returns a function that shuts the pools down.
func (f *Fleet) JoinGossip(ctx context.Context, k int, seeds []string) (func(), error) {
	var pools []*gossip.Pool
	stop := func() {
		for _, p := range pools {
			_ = p.Shutdown()
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < k && i < len(f.agents); i++ {
		a := f.agents[i]
		cfg := gossip.DefaultConfig()
		cfg.NodeName = a.id
		cfg.BindAddr = "127.0.0.1:0"
		cfg.Meta = gossip.Meta{Role: gossip.RoleAgent, NodeID: a.id, Cell: a.cell, Region: "global", Version: "fleetsim"}
		cfg.Logger = log
		p, err := gossip.New(cfg)
		if err != nil {
			stop()
			return nil, fmt.Errorf("gossip for %s: %w", a.id, err)
		}
		pools = append(pools, p)
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = p.Join(jctx, seeds)
		cancel()
		if err != nil {
			stop()
			return nil, fmt.Errorf("gossip join for %s: %w", a.id, err)
		}
	}
	return stop, nil
}
