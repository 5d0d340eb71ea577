package coordinator

import (
	"context"
	"math/rand/v2"
	"sync"
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

const (
	// barrierAttempts is how many raft barriers in a row may fail after
	// gaining leadership before this server hands leadership to another
	// voter: a leader that cannot commit cannot drive releases, and a
	// leader that stays leader keeps every other server from trying.
	barrierAttempts = 3
	// barrierRetryMin is the first wait before a failed barrier is tried
	// again; the waits grow up to ReconcileInterval (full jitter).
	barrierRetryMin = 100 * time.Millisecond
)

// leaderSeams replace the raft calls of the leadership loop; tests set them
// (SetLeaderSeams) to inject failures. Nil fields call raft.
type leaderSeams struct {
	mu                 sync.Mutex
	barrier            func(timeout time.Duration) error
	leadershipTransfer func() error
}

// LeaderSeams replace raft calls of the leadership loop, for tests that
// inject failures. A nil field calls raft.
type LeaderSeams struct {
	// Barrier replaces raft.Barrier(timeout).Error().
	Barrier func(timeout time.Duration) error
	// LeadershipTransfer replaces raft.LeadershipTransfer().Error().
	LeadershipTransfer func() error
}

// SetLeaderSeams installs test replacements for the raft calls of the
// leadership loop; they apply from the next call on. Production code never
// calls it.
func (s *Server) SetLeaderSeams(ls LeaderSeams) {
	s.seams.mu.Lock()
	defer s.seams.mu.Unlock()
	s.seams.barrier, s.seams.leadershipTransfer = ls.Barrier, ls.LeadershipTransfer
}

func (s *Server) barrier(timeout time.Duration) error {
	s.seams.mu.Lock()
	fn := s.seams.barrier
	s.seams.mu.Unlock()
	if fn != nil {
		return fn(timeout)
	}
	return s.raft.Barrier(timeout).Error()
}

func (s *Server) leadershipTransfer() error {
	s.seams.mu.Lock()
	fn := s.seams.leadershipTransfer
	s.seams.mu.Unlock()
	if fn != nil {
		return fn()
	}
	return s.raft.LeadershipTransfer().Error()
}

// leaderWGKey carries a leadership term's WaitGroup in its context.
type leaderWGKey struct{}

// goLeader runs fn in a goroutine that belongs to the leadership term of
// ctx (the context leader hooks receive): losing leadership cancels ctx and
// waits for fn to return before the next term can start. Every leader-only
// goroutine is started this way, so none outlives its term.
func goLeader(ctx context.Context, fn func()) {
	wg, ok := ctx.Value(leaderWGKey{}).(*sync.WaitGroup)
	if !ok {
		panic("coordinator: goLeader needs a leadership context")
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
}

func (s *Server) startLeaderWork() {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if s.leaderCancel != nil {
		return
	}
	wg := &sync.WaitGroup{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), leaderWGKey{}, wg))
	s.leaderCancel, s.leaderWG = cancel, wg
	hooks := append([]func(context.Context, bool){}, s.leaderHooks...)
	goLeader(ctx, func() { s.leaderLoop(ctx, hooks) })
}

// leaderLoop is one leadership term, after Nomad's leaderLoop: a raft
// barrier first, so every entry of earlier terms is applied to our FSM
// before leader work reads it; retried with capped, jittered backoff (up to
// ReconcileInterval) while it fails; after barrierAttempts failures in a row
// leadership goes to another voter. Then the leader hooks start the leader
// work and the loop reconciles raft peers until the term ends.
func (s *Server) leaderLoop(ctx context.Context, hooks []func(context.Context, bool)) {
	b := backoff.New(min(barrierRetryMin, s.cfg.ReconcileInterval), s.cfg.ReconcileInterval)
	for failures := 0; ; {
		err := s.barrier(s.cfg.ApplyTimeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			break
		}
		failures++
		if failures < barrierAttempts {
			s.log.Warn("raft barrier after gaining leadership failed; retrying", "attempt", failures, "error", err)
		} else {
			s.log.Error("raft barrier keeps failing; transferring leadership", "attempts", failures, "error", err)
			terr := s.leadershipTransfer()
			if terr == nil {
				// raft has stepped down; monitorLeadership ends this term.
				s.log.Info("leadership transferred after failed barriers")
				return
			}
			s.log.Warn("leadership transfer failed; retrying the barrier", "error", terr)
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.Next()):
		}
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
	goLeader(ctx, func() { s.gcLoop(ctx) })
	term := s.raft.CurrentTerm()
	s.pool.SetMeta(func(m *gossip.Meta) { m.Leader, m.Term = true, term })
	s.reconcileLoop(ctx)
}

// stopLeaderWork ends the leadership term: it cancels the term's context,
// waits for every goroutine of the term (leader loop, orchestrator, host
// writer, ...) and then runs the hooks with leader = false.
func (s *Server) stopLeaderWork() {
	s.leaderMu.Lock()
	cancel, wg := s.leaderCancel, s.leaderWG
	s.leaderCancel, s.leaderWG = nil, nil
	hooks := append([]func(context.Context, bool){}, s.leaderHooks...)
	s.leaderMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	wg.Wait()
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
