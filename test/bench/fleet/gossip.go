package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
//
// Each member's view also stands in for the gossip of the agents without
// one: agent i hears of a new leader when member i mod k does (see
// leaderView), so the fleet wakes as gossip spreads, not all at once.
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
		cfg.Meta = gossip.Meta{Role: gossip.RoleAgent, NodeID: a.id, Cell: a.cell, Region: f.region(), Version: "fleetsim"}
		cfg.Logger = log
		p, err := gossip.New(cfg)
		if err != nil {
			stop()
			return nil, fmt.Errorf("gossip for %s: %w", a.id, err)
		}
		pools = append(pools, p)
		f.watchLeader(p)
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

// leaderView is what one gossip member knows of leader announcements, as
// a real agent's session loop sees them (internal/agent sessionLoop): an
// alive server whose metadata says it leads ends the agent's backoff.
type leaderView struct {
	mu   sync.Mutex
	addr string
	// changed is closed (and replaced) on every announcement.
	changed chan struct{}
}

func newLeaderView() *leaderView { return &leaderView{changed: make(chan struct{})} }

// current returns the channel the next announcement closes.
func (v *leaderView) current() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.changed
}

func (v *leaderView) leader() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.addr
}

func (v *leaderView) announce(addr string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.addr = addr
	close(v.changed)
	v.changed = make(chan struct{})
}

// watchLeader turns p's member events into announcements on a new view.
// The goroutine ends when the pool shuts down (its channel closes).
func (f *Fleet) watchLeader(p *gossip.Pool) {
	v := newLeaderView()
	f.viewMu.Lock()
	f.views = append(f.views, v)
	f.viewMu.Unlock()
	events, _ := p.Subscribe(gossip.DefaultSubscribeBuffer)
	go func() {
		for ev := range events {
			m := ev.Member
			if m.Meta.Role == gossip.RoleServer && m.Meta.Leader && m.Status == gossip.StatusAlive && m.Meta.GRPCAddr != "" {
				v.announce(m.Meta.GRPCAddr)
			}
		}
	}()
}

// view is the gossip view agent i listens to; nil without gossip agents.
func (f *Fleet) view(i int) *leaderView {
	f.viewMu.Lock()
	defer f.viewMu.Unlock()
	if len(f.views) == 0 {
		return nil
	}
	return f.views[i%len(f.views)]
}
