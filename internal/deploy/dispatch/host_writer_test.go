package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// fakeRaft records applied commands; the first failures calls fail.
type fakeRaft struct {
	mu       sync.Mutex
	failures int
	applied  []proto.Message
}

func (f *fakeRaft) State() *raftfsm.State { return nil }

func (f *fakeRaft) Apply(t raftfsm.MessageType, cmd proto.Message) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return nil, errors.New("leadership changed while applying; retry")
	}
	f.applied = append(f.applied, proto.Clone(cmd))
	return &raftfsm.UpdateResult{}, nil
}

func (f *fakeRaft) commands() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.applied...)
}

// TestHostWriterRetriesAndKeepsOrder: a batch whose raft write fails is
// written again, updates keep their order, a host's newer registration
// replaces an older one, and Commit returns once its writes are in raft.
func TestHostWriterRetriesAndKeepsOrder(t *testing.T) {
	r := &fakeRaft{failures: 2}
	w := newHostWriter(r, testutil.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	w.UpsertHost(&rollwavev1.Host{Id: "h1", AgentVersion: "old"})
	var ups []*rollwavev1.AssignmentUpdate
	for _, st := range []rollwavev1.AssignmentState{rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED} {
		ups = append(ups, &rollwavev1.AssignmentUpdate{Host: "h1", App: "api", Generation: 1, State: st})
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	if err := w.Commit(cctx, &rollwavev1.Host{Id: "h1", AgentVersion: "new"}, ups); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	var states []rollwavev1.AssignmentState
	for _, c := range r.commands() {
		switch c := c.(type) {
		case *rollwavev1.UpsertHostsCommand:
			for _, h := range c.GetHosts() {
				hosts = append(hosts, h.GetAgentVersion())
			}
		case *rollwavev1.UpdateAssignmentsCommand:
			for _, u := range c.GetUpdates() {
				states = append(states, u.GetState())
			}
		}
	}
	if fmt.Sprint(hosts) != "[new]" {
		t.Errorf("hosts written: %v, want only the newer registration", hosts)
	}
	if len(states) != 2 || states[0] != ups[0].GetState() || states[1] != ups[1].GetState() {
		t.Errorf("updates written: %v, want staging then switched", states)
	}
}

// TestHostWriterStopTellsWaiters: when leadership ends before a write is
// committed, its waiter hears ErrWriterStopped instead of waiting on.
func TestHostWriterStopTellsWaiters(t *testing.T) {
	r := &fakeRaft{failures: 1 << 30}
	w := newHostWriter(r, testutil.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	errc := make(chan error, 1)
	go func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		errc <- w.Commit(cctx, &rollwavev1.Host{Id: "h1"}, nil)
	}()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.failures < 1<<30-1, "no write attempted yet"
	})
	cancel()
	<-done
	select {
	case err := <-errc:
		if !errors.Is(err, ErrWriterStopped) {
			t.Fatalf("Commit = %v, want ErrWriterStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Commit still waits after the writer stopped")
	}
}

// flushNow is one flush of w without Run: what it queues in raft is
// answered before it returns.
func flushNow(w *HostWriter) {
	q := make(chan *inflight, writerInFlight)
	w.flush(q)
	close(q)
	for e := range q {
		w.answer(e)
	}
}

// TestHostWriterHoldsContactOnlyUpserts: an upsert that only moves last
// contact waits up to contactFlushEvery for company; a registration (or
// changed facts) is written at the next flush and takes the waiting ones
// along, in one entry.
func TestHostWriterHoldsContactOnlyUpserts(t *testing.T) {
	r := &fakeRaft{}
	w := newHostWriter(r, testutil.Logger(t))
	now := time.Unix(1_780_000_000, 0)
	w.now = func() time.Time { return now }
	written := func() (ids []string) {
		for _, c := range r.commands() {
			for _, h := range c.(*rollwavev1.UpsertHostsCommand).GetHosts() {
				ids = append(ids, h.GetId())
			}
		}
		return ids
	}

	w.PersistContact(&rollwavev1.Host{Id: "h1", LastContactUnixNano: 1})
	flushNow(w)
	if got := written(); len(got) != 0 {
		t.Fatalf("a contact-only upsert was written at once: %v", got)
	}
	now = now.Add(contactFlushEvery)
	flushNow(w)
	if got := fmt.Sprint(written()); got != "[h1]" {
		t.Fatalf("after contactFlushEvery, written %s, want [h1]", got)
	}

	// A registration is due at once and takes a waiting contact along.
	r.applied = nil
	w.PersistContact(&rollwavev1.Host{Id: "h1", LastContactUnixNano: 2})
	w.UpsertHost(&rollwavev1.Host{Id: "h2", AgentVersion: "v1"})
	flushNow(w)
	if n, got := len(r.commands()), written(); n != 1 || len(got) != 2 {
		t.Fatalf("registration with a waiting contact: %d entries holding %v, want one entry with h1 and h2", n, got)
	}

	// A contact-only upsert replacing a due one of the same host does not
	// delay it.
	r.applied = nil
	w.UpsertHost(&rollwavev1.Host{Id: "h3", AgentVersion: "v2"})
	w.PersistContact(&rollwavev1.Host{Id: "h3", AgentVersion: "v2", LastContactUnixNano: 3})
	flushNow(w)
	if got := fmt.Sprint(written()); got != "[h3]" {
		t.Fatalf("written %s, want [h3] at the first flush", got)
	}
	flushNow(w)
	if n := len(r.commands()); n != 1 {
		t.Fatalf("%d entries after a second flush with nothing pending, want 1", n)
	}
}

// gatedRaft is a fakeRaft whose first Apply waits until gate closes (a
// slow commit).
type gatedRaft struct {
	fakeRaft
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (g *gatedRaft) Apply(t raftfsm.MessageType, cmd proto.Message) (any, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.gate
	}
	return g.fakeRaft.Apply(t, cmd)
}

// TestHostWriterCatchesUpInLargerEntries: reports that pile up while a
// commit is in flight go out in entries of up to writerMaxBatch, in order,
// not writerNudgeAt at a time (each entry is one commit in a row: at
// 10,000 hosts, 256 per entry made a phase wait for 40 of them).
func TestHostWriterCatchesUpInLargerEntries(t *testing.T) {
	r := &gatedRaft{gate: make(chan struct{}), entered: make(chan struct{})}
	w := newHostWriter(r, testutil.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	upd := func(i int) *rollwavev1.AssignmentUpdate {
		return &rollwavev1.AssignmentUpdate{Host: fmt.Sprintf("h%05d", i), App: "api", Generation: 1,
			State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY}
	}
	w.UpdateAssignment(upd(0))
	select {
	case <-r.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first update was not written within 20 s")
	}
	const piled = 3000
	for i := 1; i <= piled; i++ {
		w.UpdateAssignment(upd(i))
	}
	close(r.gate)
	var sizes []int
	var hosts []string
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		sizes, hosts = nil, nil
		for _, c := range r.commands() {
			if c, ok := c.(*rollwavev1.UpdateAssignmentsCommand); ok {
				sizes = append(sizes, len(c.GetUpdates()))
				for _, u := range c.GetUpdates() {
					hosts = append(hosts, u.GetHost())
				}
			}
		}
		return len(hosts) == piled+1, fmt.Sprintf("%d of %d updates written, entries of %v", len(hosts), piled+1, sizes)
	})
	for i, h := range hosts {
		if want := fmt.Sprintf("h%05d", i); h != want {
			t.Fatalf("update %d is for %s, want %s (order lost)", i, h, want)
		}
	}
	// 1 (the slow commit), then the 3,000 piled up: 1,024 + 1,024 + 952.
	if fmt.Sprint(sizes) != "[1 1024 1024 952]" {
		t.Fatalf("entries of %v updates, want [1 1024 1024 952]", sizes)
	}
}

// asyncRaft is an AsyncRaft whose entries are committed only when the
// test says: ApplyAsync records the entry as queued and returns; its wait
// blocks until commit(n) or fail(n) answers the entry at index n.
type asyncRaft struct {
	fakeRaft
	mu2     sync.Mutex
	queued  []proto.Message
	answers []chan error
}

func (a *asyncRaft) ApplyAsync(_ raftfsm.MessageType, cmd proto.Message) func() (any, error) {
	a.mu2.Lock()
	defer a.mu2.Unlock()
	a.queued = append(a.queued, proto.Clone(cmd))
	ch := make(chan error, 1)
	a.answers = append(a.answers, ch)
	return func() (any, error) {
		select {
		case err := <-ch:
			return nil, err
		case <-time.After(time.Minute):
			return nil, errors.New("test never answered the entry")
		}
	}
}

func (a *asyncRaft) entries() []proto.Message {
	a.mu2.Lock()
	defer a.mu2.Unlock()
	return append([]proto.Message(nil), a.queued...)
}

func (a *asyncRaft) answer(n int, err error) {
	a.mu2.Lock()
	ch := a.answers[n]
	a.mu2.Unlock()
	ch <- err
}

// updatesOf lists "host:state" of the updates in entries.
func updatesOf(entries []proto.Message) []string {
	var out []string
	for _, e := range entries {
		for _, u := range e.(*rollwavev1.UpdateAssignmentsCommand).GetUpdates() {
			out = append(out, u.GetHost()+":"+strings.TrimPrefix(u.GetState().String(), "ASSIGNMENT_STATE_"))
		}
	}
	return out
}

// TestHostWriterKeepsEntriesInFlight: with an AsyncRaft, reports that
// come while an entry is uncommitted go out in the next entries at once
// (up to writerInFlight in flight), in order; an entry that fails is
// written again after everything in flight is answered, ahead of the
// reports that came since, so that no host's steps are reordered.
func TestHostWriterKeepsEntriesInFlight(t *testing.T) {
	r := &asyncRaft{}
	w := newHostWriter(r, testutil.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	upd := func(host string, st rollwavev1.AssignmentState) *rollwavev1.AssignmentUpdate {
		return &rollwavev1.AssignmentUpdate{Host: host, App: "api", Generation: 1, State: st}
	}
	waitEntries := func(n int) {
		t.Helper()
		testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
			got := len(r.entries())
			return got >= n, fmt.Sprintf("%d entries queued, want %d", got, n)
		})
	}
	w.UpdateAssignment(upd("h1", rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING))
	waitEntries(1)
	// Entry 0 is not committed: the next reports go out anyway.
	w.UpdateAssignment(upd("h1", rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED))
	waitEntries(2)
	w.UpdateAssignment(upd("h1", rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING))
	waitEntries(3)
	// Three in flight: the next report waits for room (checked below by
	// where it ends up).
	w.UpdateAssignment(upd("h1", rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY))
	// Entry 0 fails (leadership moved, say); 1 and 2 fail too. Nothing is
	// written until all three are answered; then all of them again, in
	// order, before the report that came meanwhile.
	r.answer(0, errors.New("leadership lost"))
	r.answer(1, errors.New("leadership lost"))
	r.answer(2, errors.New("leadership lost"))
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		got := updatesOf(r.entries())
		want := "[h1:STAGING h1:SWITCHED h1:BAKING h1:STAGING h1:SWITCHED h1:BAKING h1:HEALTHY]"
		return fmt.Sprint(got) == want, fmt.Sprintf("queued %v, want %s", got, want)
	})
	for i := 3; i < len(r.entries()); i++ {
		r.answer(i, nil)
	}
	// A Commit returns once its entry is committed.
	errc := make(chan error, 1)
	go func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		errc <- w.Commit(cctx, &rollwavev1.Host{Id: "h9"}, nil)
	}()
	n := len(r.entries())
	waitEntries(n + 1)
	r.answer(n, nil)
	if err := <-errc; err != nil {
		t.Fatalf("Commit = %v", err)
	}
}
