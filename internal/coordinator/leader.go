package coordinator

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/gossip"
)

// monitorLeadership drains raft's notify channel (raft blocks on it, so it
// is never left unread) and starts or stops leader-only work.
func (s *Server) monitorLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.shutdownCh:
			return
		case isLeader := <-s.leaderNotify:
			if isLeader {
				s.startLeaderWork()
			} else {
				s.stopLeaderWork()
			}
		}
	}
}

func (s *Server) startLeaderWork() {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if s.leaderCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.leaderCancel, s.leaderDone = cancel, done
	hooks := append([]func(context.Context, bool){}, s.leaderHooks...)
	go func() {
		defer close(done)
		// A barrier makes sure every entry of earlier terms is applied to
		// our FSM before leader work reads it.
		if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
			s.log.Warn("barrier after gaining leadership failed; stepping back", "error", err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Info("gained leadership")
		// Leader work first, the gossip announcement after: SetMeta waits
		// until memberlist has sent the broadcast (~0.5 s, up to
		// BroadcastTimeout), and agents reconnect the moment they hear it,
		// so their reports must find the host writer and the orchestrator
		// already running (docs/performance.md, leader failover).
		for _, h := range hooks {
			h(ctx, true)
		}
		term := s.raft.CurrentTerm()
		s.pool.SetMeta(func(m *gossip.Meta) { m.Leader, m.Term = true, term })
		s.reconcileLoop(ctx)
	}()
}

func (s *Server) stopLeaderWork() {
	s.leaderMu.Lock()
	cancel, done := s.leaderCancel, s.leaderDone
	s.leaderCancel, s.leaderDone = nil, nil
	hooks := append([]func(context.Context, bool){}, s.leaderHooks...)
	s.leaderMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	for _, h := range hooks {
		h(context.Background(), false)
	}
	select {
	case <-s.shutdownCh:
	default:
		s.pool.SetMeta(func(m *gossip.Meta) { m.Leader = false })
	}
	s.log.Info("lost leadership")
}

// reconcileLoop keeps the raft configuration in line with the servers seen
// in gossip: alive servers missing from raft are added as voters, servers
// that left gracefully are removed. Dead (crashed) servers stay until an
// operator removes them, since they may come back.
func (s *Server) reconcileLoop(ctx context.Context) {
	events, unsubscribe := s.pool.Subscribe(64)
	defer unsubscribe()
	for {
		s.reconcilePeers()
		// Jitter spreads the periodic work of many leaders' lifetimes.
		wait := s.cfg.ReconcileInterval + time.Duration(rand.Int64N(int64(s.cfg.ReconcileInterval)/4+1))
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-time.After(wait):
		}
	}
}

func (s *Server) reconcilePeers() {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		s.log.Warn("read raft configuration", "error", err)
		return
	}
	inRaft := map[raft.ServerID]raft.Server{}
	for _, srv := range f.Configuration().Servers {
		inRaft[srv.ID] = srv
	}
	for _, m := range s.pool.Members() {
		if m.Meta.Role != gossip.RoleServer || m.Meta.NodeID == "" || m.Meta.RaftAddr == "" {
			continue
		}
		id := raft.ServerID(m.Meta.NodeID)
		cur, known := inRaft[id]
		switch m.Status {
		case "alive":
			if known && cur.Address == raft.ServerAddress(m.Meta.RaftAddr) && cur.Suffrage == raft.Voter {
				continue
			}
			s.log.Info("adding server to raft as voter", "server", m.Meta.NodeID, "raft_addr", m.Meta.RaftAddr)
			if err := s.raft.AddVoter(id, raft.ServerAddress(m.Meta.RaftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn("add voter failed", "server", m.Meta.NodeID, "error", err)
			}
		case "left":
			if !known || id == raft.ServerID(s.cfg.NodeID) {
				continue
			}
			s.log.Info("removing server that left from raft", "server", m.Meta.NodeID)
			if err := s.raft.RemoveServer(id, 0, s.cfg.ApplyTimeout).Error(); err != nil {
				s.log.Warn("remove server failed", "server", m.Meta.NodeID, "error", err)
			}
		}
	}
}

// joinLoop joins the gossip pool through the given addresses, retrying with
// capped exponential backoff and full jitter until one attempt succeeds or
// the server shuts down.
func (s *Server) joinLoop(addrs []string) {
	defer s.wg.Done()
	b := backoff.New(200*time.Millisecond, 30*time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		go func() {
			select {
			case <-s.shutdownCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		n, err := s.pool.Join(ctx, addrs)
		cancel()
		if err == nil {
			s.log.Info("joined gossip pool", "contacted", n, "addresses", addrs)
			return
		}
		s.log.Warn("join gossip pool failed; retrying", "attempt", attempt, "addresses", addrs, "error", err)
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(b.Next()):
		}
	}
}
