package gossip

import (
	"bytes"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rollwave/rollwave/internal/testutil"
)

// fakeClock is a settable clock for the view.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestView(t *testing.T, reap time.Duration) (*view, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	v := newView(testutil.Logger(t), newHub(), reap)
	v.now = clock.now
	return v, clock
}

func node(t *testing.T, name string, port uint16, m Meta) *memberlist.Node {
	t.Helper()
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	return &memberlist.Node{Name: name, Addr: net.IPv4(10, 0, 0, 1), Port: port, Meta: b}
}

func TestViewReapsDeadAndLeft(t *testing.T) {
	v, clock := newTestView(t, time.Hour)
	v.NotifyJoin(node(t, "a", 1, agentMeta("a")))
	v.NotifyJoin(node(t, "b", 2, agentMeta("b")))
	v.NotifyJoin(node(t, "c", 3, agentMeta("c")))

	clock.advance(time.Minute)
	v.NotifyLeave(node(t, "a", 1, agentMeta("a"))) // failed
	leaving := agentMeta("b")
	leaving.Leaving = true
	v.NotifyUpdate(node(t, "b", 2, leaving))
	v.NotifyLeave(node(t, "b", 2, leaving)) // left gracefully

	got := statuses(v)
	if got["a"] != StatusDead || got["b"] != StatusLeft || got["c"] != StatusAlive {
		t.Fatalf("statuses %v", got)
	}
	if m, _ := v.get("a"); !m.Since.Equal(clock.t) || m.Addr != "10.0.0.1:1" {
		t.Fatalf("dead member %+v", m)
	}

	// Just before ReapAfter they are still listed; at ReapAfter they go.
	clock.advance(time.Hour - time.Nanosecond)
	if len(v.list()) != 3 {
		t.Fatalf("reaped too early: %v", statuses(v))
	}
	clock.advance(time.Nanosecond)
	if got := statuses(v); len(got) != 1 || got["c"] != StatusAlive {
		t.Fatalf("after ReapAfter: %v", got)
	}
	// Storage is swept at most every ReapAfter/10.
	clock.advance(time.Hour / 10)
	v.list()
	if len(v.byName) != 1 {
		t.Fatalf("expired records not deleted: %d stored", len(v.byName))
	}

	// A reaped node that comes back is simply alive again.
	v.NotifyJoin(node(t, "a", 1, agentMeta("a")))
	if statuses(v)["a"] != StatusAlive {
		t.Fatalf("rejoin: %v", statuses(v))
	}
}

func statuses(v *view) map[string]Status {
	out := map[string]Status{}
	for _, m := range v.list() {
		out[m.Name] = m.Status
	}
	return out
}

func TestViewLeaderChoice(t *testing.T) {
	leader := func(id string, term uint64) Meta {
		m := serverMeta(id)
		m.Leader, m.Term = true, term
		return m
	}
	cases := []struct {
		name  string
		steps func(v *view, c *fakeClock)
		want  string // "" means no leader
	}{
		// nobody claims
		{"none", func(v *view, c *fakeClock) {
			v.NotifyJoin(node(t, "s1", 1, serverMeta("s1")))
		}, ""},
		// the higher term wins whatever the order of observation
		{"higher term", func(v *view, c *fakeClock) {
			v.NotifyJoin(node(t, "s2", 2, leader("s2", 7)))
			c.advance(time.Second)
			v.NotifyJoin(node(t, "s1", 1, leader("s1", 6)))
		}, "s2"},
		// without terms the most recently seen claim wins
		{"newest claim", func(v *view, c *fakeClock) {
			v.NotifyJoin(node(t, "s1", 1, leader("s1", 0)))
			c.advance(time.Second)
			v.NotifyJoin(node(t, "s2", 2, leader("s2", 0)))
		}, "s2"},
		// a dead claimant does not count
		{"dead claimant", func(v *view, c *fakeClock) {
			v.NotifyJoin(node(t, "s1", 1, leader("s1", 9)))
			v.NotifyJoin(node(t, "s2", 2, leader("s2", 8)))
			v.NotifyLeave(node(t, "s1", 1, leader("s1", 9)))
		}, "s2"},
		// agents cannot lead, whatever their meta says
		{"agent claim", func(v *view, c *fakeClock) {
			m := agentMeta("a")
			m.Leader = true
			v.NotifyJoin(node(t, "a", 1, m))
		}, ""},
		// same term and same moment: the lowest name, so all callers agree
		{"tie", func(v *view, c *fakeClock) {
			v.NotifyJoin(node(t, "s2", 2, leader("s2", 0)))
			v.NotifyJoin(node(t, "s1", 1, leader("s1", 0)))
		}, "s1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, c := newTestView(t, time.Hour)
			tc.steps(v, c)
			l, ok := v.leader()
			if tc.want == "" {
				if ok {
					t.Fatalf("want no leader, got %s", l.Name)
				}
				return
			}
			if !ok || l.Name != tc.want {
				t.Fatalf("leader = %q (%v), want %q", l.Name, ok, tc.want)
			}
		})
	}
}

func TestViewUndecodableMeta(t *testing.T) {
	v, _ := newTestView(t, time.Hour)
	v.NotifyJoin(&memberlist.Node{Name: "x", Addr: net.IPv4(10, 0, 0, 9), Port: 5, Meta: []byte("garbage")})
	m, ok := v.get("x")
	if !ok || m.Status != StatusAlive || m.Meta != (Meta{}) {
		t.Fatalf("member with bad meta should be alive with zero Meta: %+v", m)
	}
}

func TestHubDropsAndCounts(t *testing.T) {
	h := newHub()
	slow, cancelSlow := h.subscribe(1)
	fast, cancelFast := h.subscribe(10)
	defer cancelFast()

	for i := range 3 {
		h.publish(Event{Type: EventUpdate, Member: Member{Name: string(rune('a' + i))}})
	}
	// The slow subscriber got the first event; the next two were dropped.
	if ev := <-slow; ev.Member.Name != "a" || ev.Missed != 0 {
		t.Fatalf("first slow event %+v", ev)
	}
	h.publish(Event{Type: EventUpdate, Member: Member{Name: "d"}})
	if ev := <-slow; ev.Member.Name != "d" || ev.Missed != 2 {
		t.Fatalf("slow subscriber should learn it missed 2: %+v", ev)
	}
	for _, want := range []string{"a", "b", "c", "d"} {
		if ev := <-fast; ev.Member.Name != want || ev.Missed != 0 {
			t.Fatalf("fast subscriber: %+v, want %s", ev, want)
		}
	}
	if h.dropped.Load() != 2 {
		t.Fatalf("dropped = %d, want 2", h.dropped.Load())
	}

	cancelSlow()
	cancelSlow() // idempotent
	if _, ok := <-slow; ok {
		t.Fatal("cancel should close the channel")
	}
	h.publish(Event{Type: EventJoin}) // must not panic on the closed channel
	if ev := <-fast; ev.Type != EventJoin {
		t.Fatalf("fast subscriber: %+v", ev)
	}

	h.close()
	if _, ok := <-fast; ok {
		t.Fatal("close should close remaining channels")
	}
	cancelFast() // after close: no double close
	late, cancelLate := h.subscribe(0)
	if _, ok := <-late; ok {
		t.Fatal("subscribing after close should give a closed channel")
	}
	cancelLate()
}

func TestLogWriterLevels(t *testing.T) {
	var buf bytes.Buffer
	w := &logWriter{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	cases := []struct{ line, want string }{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4:5\n", `level=DEBUG msg="Stream connection from=1.2.3.4:5" source=memberlist`},
		{"[INFO] memberlist: Marking x as failed\n", `level=DEBUG msg="Marking x as failed"`},
		{"[WARN] memberlist: Refuting a dead message\n", `level=WARN msg="Refuting a dead message"`},
		{"[ERR] memberlist: Conflicting address\n", `level=ERROR msg="Conflicting address"`},
		{"untagged line\n", `level=DEBUG msg="untagged line"`},
	}
	for _, tc := range cases {
		buf.Reset()
		n, err := w.Write([]byte(tc.line))
		if err != nil || n != len(tc.line) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if !bytes.Contains(buf.Bytes(), []byte(tc.want)) {
			t.Fatalf("%q logged as %q, want %q", tc.line, buf.String(), tc.want)
		}
	}
}
