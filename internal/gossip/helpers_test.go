package gossip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitEvent reads events until match accepts one or timeout passes, and
// fails the test listing the events it saw.
func waitEvent(t *testing.T, ch <-chan Event, timeout time.Duration, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed; saw %v", seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, fmt.Sprintf("%s %s/%s", ev.Type, ev.Member.Name, ev.Member.Status))
		case <-timer.C:
			t.Fatalf("no matching event within %v; saw %v", timeout, seen)
		}
	}
}

// testConfig is a loopback, port-0, fast-timing configuration.
func testConfig(t *testing.T, name string, meta Meta) Config {
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Meta = meta
	cfg.Logger = testutil.Logger(t).With("pool", name) // which pool logged: all share t
	cfg.Fast = true
	cfg.BroadcastTimeout = 3 * time.Second
	cfg.JoinBackoffMin = 5 * time.Millisecond
	cfg.JoinBackoffMax = 50 * time.Millisecond
	return cfg
}

func newTestPool(t *testing.T, name string, meta Meta) *Pool {
	t.Helper()
	p, err := New(testConfig(t, name, meta))
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// testCluster starts two servers (s1, s2) and one agent (a1), joins them
// through s1, and waits until every pool sees all three alive.
func testCluster(t *testing.T) []*Pool {
	t.Helper()
	pools := []*Pool{
		newTestPool(t, "s1", serverMeta("srv-1")),
		newTestPool(t, "s2", serverMeta("srv-2")),
		newTestPool(t, "a1", agentMeta("host-1")),
	}
	for _, p := range pools[1:] {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		n, err := p.Join(ctx, []string{pools[0].LocalAddr()})
		cancel()
		if err != nil || n != 1 {
			t.Fatalf("join: n=%d err=%v", n, err)
		}
	}
	for _, p := range pools {
		testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
			return countStatus(p, StatusAlive) == len(pools), summary(p)
		})
	}
	return pools
}

func countStatus(p *Pool, s Status) int {
	n := 0
	for _, m := range p.Members() {
		if m.Status == s {
			n++
		}
	}
	return n
}

// summary renders a pool's view for failure messages.
func summary(p *Pool) string {
	var parts []string
	for _, m := range p.Members() {
		parts = append(parts, fmt.Sprintf("%s(%s %s leader=%v term=%d)", m.Name, m.Status, m.Meta.Role, m.Meta.Leader, m.Meta.Term))
	}
	return fmt.Sprintf("view of %s: [%s]", p.cfg.NodeName, strings.Join(parts, " "))
}

func member(p *Pool, name string) (Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// rejectingListener holds a loopback TCP port and closes every connection
// it accepts, so a memberlist join to it fails at once. Holding the port
// (rather than freeing it for "connection refused") keeps other pools from
// being assigned it meanwhile.
type rejectingListener struct {
	l    net.Listener
	done chan struct{}
}

func newRejectingListener(t *testing.T) *rejectingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rejectingListener{l: l, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *rejectingListener) addr() string { return r.l.Addr().String() }

// close frees the port and waits for the accept loop to end.
func (r *rejectingListener) close() {
	_ = r.l.Close()
	<-r.done
}
