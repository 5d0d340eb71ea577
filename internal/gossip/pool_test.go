package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

const converge = 10 * time.Second // generous: loopback converges in well under a second

func TestPoolMembersAndMeta(t *testing.T) {
	t.Parallel()
	pools := testCluster(t)
	for _, p := range pools {
		if strings.HasSuffix(p.LocalAddr(), ":0") || !strings.HasPrefix(p.LocalAddr(), "127.0.0.1:") {
			t.Fatalf("LocalAddr %q should be the bound loopback port", p.LocalAddr())
		}
		// Every pool sees every other pool's address and metadata.
		for _, other := range pools {
			m, ok := member(p, other.cfg.NodeName)
			if !ok {
				t.Fatalf("%s does not know %s: %s", p.cfg.NodeName, other.cfg.NodeName, summary(p))
			}
			if m.Addr != other.LocalAddr() || m.Meta != other.LocalMeta() || m.Status != StatusAlive {
				t.Fatalf("%s sees %+v, want addr %s meta %+v alive", p.cfg.NodeName, m, other.LocalAddr(), other.LocalMeta())
			}
		}
		servers := p.Servers()
		if len(servers) != 2 || servers[0].Name != "s1" || servers[1].Name != "s2" {
			t.Fatalf("%s: Servers() = %v, want s1, s2", p.cfg.NodeName, servers)
		}
		if l, ok := p.Leader(); ok {
			t.Fatalf("no server claimed leadership, yet Leader() = %s", l.Name)
		}
	}
}

func TestPoolSubscribeJoin(t *testing.T) {
	t.Parallel()
	s1 := newTestPool(t, "s1", serverMeta("srv-1"))
	events, cancel := s1.Subscribe(16)
	defer cancel()

	a1 := newTestPool(t, "a1", agentMeta("host-1"))
	ctx, stop := context.WithTimeout(t.Context(), converge)
	defer stop()
	if _, err := a1.Join(ctx, []string{s1.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, converge, func(ev Event) bool {
		return ev.Type == EventJoin && ev.Member.Name == "a1"
	})
	if ev.Member.Meta != agentMeta("host-1") || ev.Member.Status != StatusAlive || ev.Missed != 0 {
		t.Fatalf("join event %+v", ev)
	}
}

func TestPoolLeaderAdvertised(t *testing.T) {
	t.Parallel()
	pools := testCluster(t)
	s1, s2, a1 := pools[0], pools[1], pools[2]
	events, cancel := a1.Subscribe(64)
	defer cancel()

	if err := s1.SetMeta(func(m *Meta) { m.Leader, m.Term = true, 2 }); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	waitLeader := func(want string) {
		t.Helper()
		for _, p := range pools {
			testutil.WaitFor(t, converge, func() (bool, string) {
				l, ok := p.Leader()
				return ok && l.Name == want, summary(p)
			})
		}
	}
	waitLeader("s1")
	ev := waitEvent(t, events, converge, func(ev Event) bool {
		return ev.Type == EventUpdate && ev.Member.Name == "s1" && ev.Member.Meta.Leader
	})
	if ev.Member.Meta.Term != 2 {
		t.Fatalf("update event %+v", ev)
	}

	// A new leader in a higher term wins even before the old one withdraws.
	if err := s2.SetMeta(func(m *Meta) { m.Leader, m.Term = true, 3 }); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	waitLeader("s2")
	if err := s1.SetMeta(func(m *Meta) { m.Leader, m.Term = false, 0 }); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	testutil.WaitFor(t, converge, func() (bool, string) {
		m, _ := member(a1, "s1")
		return !m.Meta.Leader, summary(a1)
	})
	if l, ok := a1.Leader(); !ok || l.Name != "s2" {
		t.Fatalf("Leader() = %v, %v; want s2", l.Name, ok)
	}
}

func TestPoolSetMetaRejectsBadMeta(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, "s1", serverMeta("srv-1"))
	before := p.LocalMeta()

	err := p.SetMeta(func(m *Meta) { m.NodeID = "" })
	if err == nil || !strings.Contains(err.Error(), "Meta.NodeID is required") {
		t.Fatalf("want NodeID error, got %v", err)
	}
	err = p.SetMeta(func(m *Meta) { m.Version = strings.Repeat("x", MetaMaxSize) })
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("want ErrMetaTooLarge, got %v", err)
	}
	if p.LocalMeta() != before {
		t.Fatalf("rejected SetMeta changed meta: %+v", p.LocalMeta())
	}
	// Leaving is reserved for Leave.
	if err := p.SetMeta(func(m *Meta) { m.Leaving = true }); err != nil || p.LocalMeta().Leaving {
		t.Fatalf("SetMeta must not set Leaving: err=%v meta=%+v", err, p.LocalMeta())
	}
}

func TestPoolLeaveSeenAsLeft(t *testing.T) {
	t.Parallel()
	pools := testCluster(t)
	s1, a1 := pools[0], pools[2]
	events, cancel := s1.Subscribe(64)
	defer cancel()

	if err := a1.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for _, p := range pools[:2] {
		testutil.WaitFor(t, converge, func() (bool, string) {
			m, _ := member(p, "a1")
			return m.Status == StatusLeft, summary(p)
		})
	}
	waitEvent(t, events, converge, func(ev Event) bool {
		return ev.Type == EventLeave && ev.Member.Name == "a1" && ev.Member.Status == StatusLeft
	})
	if m, _ := member(a1, "a1"); m.Status != StatusLeft {
		t.Fatalf("a1 sees itself as %s", m.Status)
	}
	if err := a1.SetMeta(func(m *Meta) { m.Version = "2" }); !errors.Is(err, ErrLeft) {
		t.Fatalf("SetMeta after Leave: want ErrLeft, got %v", err)
	}
	if _, err := a1.Join(t.Context(), []string{s1.LocalAddr()}); !errors.Is(err, ErrLeft) {
		t.Fatalf("Join after Leave: want ErrLeft, got %v", err)
	}
	if err := a1.Leave(time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
}

func TestPoolShutdownSeenAsDead(t *testing.T) {
	t.Parallel()
	pools := testCluster(t)
	s1, s2, a1 := pools[0], pools[1], pools[2]
	events, cancel := s1.Subscribe(64)
	defer cancel()
	s2events, _ := s2.Subscribe(1)

	if err := s2.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, ok := <-s2events; ok {
		t.Fatal("Shutdown must close subscription channels")
	}
	for _, p := range []*Pool{s1, a1} {
		testutil.WaitFor(t, converge, func() (bool, string) {
			m, _ := member(p, "s2")
			return m.Status == StatusDead, summary(p)
		})
		if got := p.Servers(); len(got) != 1 || got[0].Name != "s1" {
			t.Fatalf("Servers() after s2 died = %v", got)
		}
	}
	waitEvent(t, events, converge, func(ev Event) bool {
		return ev.Type == EventLeave && ev.Member.Name == "s2" && ev.Member.Status == StatusDead
	})
	if err := s2.SetMeta(func(*Meta) {}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("SetMeta after Shutdown: want ErrShutdown, got %v", err)
	}
	if err := s2.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Leave after Shutdown: want ErrShutdown, got %v", err)
	}
	if err := s2.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestJoinUnreachable(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, "a1", agentMeta("host-1"))
	dead1, dead2 := newRejectingListener(t).addr(), newRejectingListener(t).addr()

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	n, err := p.Join(ctx, []string{dead1, dead2})
	if n != 0 || err == nil {
		t.Fatalf("Join to nothing: n=%d err=%v", n, err)
	}
	t.Logf("join error: %v", err)
	if !errors.Is(err, ErrJoin) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error should wrap ErrJoin and DeadlineExceeded: %v", err)
	}
	for _, a := range []string{dead1, dead2} {
		if !strings.Contains(err.Error(), a) {
			t.Fatalf("error should name %s: %v", a, err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error should be one line: %q", err)
	}
	if !strings.Contains(err.Error(), "last error: failed to join") {
		t.Fatalf("error should carry the last cause: %v", err)
	}

	if _, err := p.Join(t.Context(), nil); !errors.Is(err, ErrJoin) {
		t.Fatalf("Join with no addresses: %v", err)
	}
}

func TestJoinRetriesUntilSeedAppears(t *testing.T) {
	t.Parallel()
	// The agent starts joining before the seed exists; the seed then comes
	// up on the address the agent keeps trying.
	failed := &signalWriter{match: "join attempt failed", ch: make(chan struct{})}
	cfg := testConfig(t, "a1", agentMeta("host-1"))
	cfg.Logger = slog.New(slog.NewTextHandler(failed, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a1.Shutdown() })

	seed := newRejectingListener(t)
	seedAddr := seed.addr()
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), converge)
	defer cancel()
	go func() {
		_, err := a1.Join(ctx, []string{seedAddr})
		done <- err
	}()
	select {
	case <-failed.ch:
	case <-ctx.Done():
		t.Fatal("no failed join attempt logged")
	}

	// Hand the held port to the seed (a short window where another
	// process could take it; New is retried below).
	seed.close()
	seedCfg := testConfig(t, "s1", serverMeta("srv-1"))
	seedCfg.BindAddr = seedAddr
	var s1 *Pool
	testutil.WaitFor(t, converge, func() (bool, string) {
		// Something else may briefly hold the port; retry creation.
		p, err := New(seedCfg)
		if err != nil {
			return false, err.Error()
		}
		s1 = p
		return true, ""
	})
	t.Cleanup(func() { _ = s1.Shutdown() })
	if err := <-done; err != nil {
		t.Fatalf("Join should succeed once the seed is up: %v", err)
	}
	testutil.WaitFor(t, converge, func() (bool, string) {
		return countStatus(s1, StatusAlive) == 2, summary(s1)
	})
}

// signalWriter closes ch the first time a log line contains match.
type signalWriter struct {
	match string
	ch    chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.match) {
		w.once.Do(func() { close(w.ch) })
	}
	return len(p), nil
}

// HealthScore rises while this member's probes go unanswered (its only
// peer crashed, so no one can ping it indirectly) and falls back to 0
// once probes are answered again.
func TestPoolHealthScore(t *testing.T) {
	t.Parallel()
	a := newTestPool(t, "a", agentMeta("host-a"))
	b := newTestPool(t, "b", agentMeta("host-b"))
	if got := a.HealthScore(); got != 0 {
		t.Fatalf("new pool: HealthScore %d, want 0", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), converge)
	defer cancel()
	if _, err := b.Join(ctx, []string{a.LocalAddr()}); err != nil {
		t.Fatalf("join: %v", err)
	}
	testutil.WaitFor(t, converge, func() (bool, string) { return countStatus(a, StatusAlive) == 2, summary(a) })
	if err := b.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	testutil.WaitFor(t, converge, func() (bool, string) {
		return a.HealthScore() > 0, fmt.Sprintf("HealthScore %d with its only peer gone; %s", a.HealthScore(), summary(a))
	})
	c := newTestPool(t, "c", agentMeta("host-c"))
	if _, err := c.Join(ctx, []string{a.LocalAddr()}); err != nil {
		t.Fatalf("join c: %v", err)
	}
	testutil.WaitFor(t, converge, func() (bool, string) {
		return a.HealthScore() == 0, fmt.Sprintf("HealthScore %d with a live peer answering; %s", a.HealthScore(), summary(a))
	})
}
