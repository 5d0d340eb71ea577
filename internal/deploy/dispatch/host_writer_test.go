package dispatch

import (
	"context"
	"errors"
	"fmt"
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
	w.flush()
	if got := written(); len(got) != 0 {
		t.Fatalf("a contact-only upsert was written at once: %v", got)
	}
	now = now.Add(contactFlushEvery)
	w.flush()
	if got := fmt.Sprint(written()); got != "[h1]" {
		t.Fatalf("after contactFlushEvery, written %s, want [h1]", got)
	}

	// A registration is due at once and takes a waiting contact along.
	r.applied = nil
	w.PersistContact(&rollwavev1.Host{Id: "h1", LastContactUnixNano: 2})
	w.UpsertHost(&rollwavev1.Host{Id: "h2", AgentVersion: "v1"})
	w.flush()
	if n, got := len(r.commands()), written(); n != 1 || len(got) != 2 {
		t.Fatalf("registration with a waiting contact: %d entries holding %v, want one entry with h1 and h2", n, got)
	}

	// A contact-only upsert replacing a due one of the same host does not
	// delay it.
	r.applied = nil
	w.UpsertHost(&rollwavev1.Host{Id: "h3", AgentVersion: "v2"})
	w.PersistContact(&rollwavev1.Host{Id: "h3", AgentVersion: "v2", LastContactUnixNano: 3})
	w.flush()
	if got := fmt.Sprint(written()); got != "[h3]" {
		t.Fatalf("written %s, want [h3] at the first flush", got)
	}
	w.flush()
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

// asyncRaft is an AsyncRaft: ApplyAsync records the entry in submission
// order at once; its commit waits until release is called for it and the
// entry before it is done (raft applies in log order), and then fails if
// fail says so.
type asyncRaft struct {
	fakeRaft
	mu2       sync.Mutex
	submitted []proto.Message
	gates     []chan struct{}
	last      chan struct{} // done when the newest entry is
	fail      func(i int) bool
}

func (a *asyncRaft) ApplyAsync(t raftfsm.MessageType, cmd proto.Message) func() (any, error) {
	a.mu2.Lock()
	i := len(a.submitted)
	a.submitted = append(a.submitted, proto.Clone(cmd))
	g := make(chan struct{})
	a.gates = append(a.gates, g)
	prev, done := a.last, make(chan struct{})
	a.last = done
	a.mu2.Unlock()
	return func() (any, error) {
		defer close(done)
		<-g
		if prev != nil {
			<-prev
		}
		if a.fail != nil && a.fail(i) {
			return nil, errors.New("leadership lost while applying")
		}
		return a.Apply(t, cmd)
	}
}

// release lets the commits of entries [from, to) finish (each once).
func (a *asyncRaft) release(from, to int) {
	a.mu2.Lock()
	defer a.mu2.Unlock()
	for _, g := range a.gates[from:min(to, len(a.gates))] {
		select {
		case <-g:
		default:
			close(g)
		}
	}
}

// releaseAll lets every commit finish (a test ending early must not leave
// the writer waiting).
func (a *asyncRaft) releaseAll() { a.release(0, 1<<30) }

func (a *asyncRaft) submittedCount() int {
	a.mu2.Lock()
	defer a.mu2.Unlock()
	return len(a.submitted)
}

func appliedUpdates(r *fakeRaft) (hosts []string, sizes []int) {
	for _, c := range r.commands() {
		if c, ok := c.(*rollwavev1.UpdateAssignmentsCommand); ok {
			sizes = append(sizes, len(c.GetUpdates()))
			for _, u := range c.GetUpdates() {
				hosts = append(hosts, u.GetHost())
			}
		}
	}
	return hosts, sizes
}

// runQueued queues n healthy updates, all before the writer runs (full
// entries), runs a writer over r, and returns the function that stops it.
func runQueued(t *testing.T, r *asyncRaft, n int) (stop func()) {
	w := newHostWriter(r, testutil.Logger(t))
	for i := range n {
		w.UpdateAssignment(healthyUpdate(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { cancel(); r.releaseAll(); <-done }
}

func healthyUpdate(i int) *rollwavev1.AssignmentUpdate {
	return &rollwavev1.AssignmentUpdate{Host: fmt.Sprintf("h%05d", i), App: "api", Generation: 1,
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY}
}

// TestHostWriterKeepsEntriesInFlight: with an AsyncRaft, reports that pile
// up go to raft as up to writerInFlight entries at once, not one commit
// after another, and raft gets them in order.
func TestHostWriterKeepsEntriesInFlight(t *testing.T) {
	r := &asyncRaft{}
	const n = 6 * writerMaxBatch
	defer runQueued(t, r, n)()
	// No commit finishes: the writer must still hand raft writerInFlight
	// entries.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return r.submittedCount() == writerInFlight, fmt.Sprintf("%d entries handed to raft while none committed, want %d", r.submittedCount(), writerInFlight)
	})
	r.release(0, writerInFlight)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return r.submittedCount() == 6, fmt.Sprintf("%d entries handed to raft, want 6", r.submittedCount())
	})
	r.release(writerInFlight, 6)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		hosts, _ := appliedUpdates(&r.fakeRaft)
		return len(hosts) == n, fmt.Sprintf("%d of %d updates committed", len(hosts), n)
	})
	hosts, _ := appliedUpdates(&r.fakeRaft)
	for i, h := range hosts {
		if want := fmt.Sprintf("h%05d", i); h != want {
			t.Fatalf("update %d is for %s, want %s (order lost)", i, h, want)
		}
	}
}

// TestHostWriterRewritesAfterAFailedEntry: when an entry in flight fails
// and a later one commits, the writer writes the failed entry's updates
// and then the later one's again, in order: the FSM may have skipped the
// later steps for want of the earlier ones.
func TestHostWriterRewritesAfterAFailedEntry(t *testing.T) {
	r := &asyncRaft{fail: func(i int) bool { return i == 0 }}
	const n = 2 * writerMaxBatch
	defer runQueued(t, r, n)()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return r.submittedCount() == 2, fmt.Sprintf("%d entries handed to raft, want 2", r.submittedCount())
	})
	r.release(0, 2) // the first fails, the second commits
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		c := r.submittedCount()
		r.release(2, c)
		return c >= 4, fmt.Sprintf("%d entries handed to raft, want 4", c)
	})
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		hosts, _ := appliedUpdates(&r.fakeRaft)
		return len(hosts) == 2*writerMaxBatch+writerMaxBatch, fmt.Sprintf("%d updates committed", len(hosts))
	})
	hosts, sizes := appliedUpdates(&r.fakeRaft)
	// Committed: the second entry, then the first and the second again.
	var want []string
	for _, i := range append(seq(writerMaxBatch, n), seq(0, n)...) {
		want = append(want, fmt.Sprintf("h%05d", i))
	}
	if fmt.Sprint(hosts) != fmt.Sprint(want) {
		t.Fatalf("committed updates out of order (entries of %v)", sizes)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestHostWriterDropsRepeatedReports: a report that repeats the newest
// pending step of its host and app (a resent finalize order answered
// again while the first answer waits for raft) is not written twice; a
// different step, or the same step after the first was committed, is.
func TestHostWriterDropsRepeatedReports(t *testing.T) {
	r := &fakeRaft{}
	w := newHostWriter(r, testutil.Logger(t))
	fin := func(h string, gen uint64) *rollwavev1.AssignmentUpdate {
		return &rollwavev1.AssignmentUpdate{Host: h, App: "api", Generation: gen, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED}
	}
	w.UpdateAssignment(fin("h1", 1))
	w.UpdateAssignment(fin("h2", 1))
	w.UpdateAssignment(fin("h1", 1)) // repeat: dropped
	w.UpdateAssignment(fin("h2", 2)) // another generation: kept
	w.flush()
	w.UpdateAssignment(fin("h1", 1)) // after the commit: written (the FSM skips it)
	w.flush()
	var got []string
	for _, c := range r.commands() {
		var e []string
		for _, u := range c.(*rollwavev1.UpdateAssignmentsCommand).GetUpdates() {
			e = append(e, fmt.Sprintf("%s/%d", u.GetHost(), u.GetGeneration()))
		}
		got = append(got, fmt.Sprint(e))
	}
	if want := "[[h1/1 h2/1 h2/2] [h1/1]]"; fmt.Sprint(got) != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
}

// TestHostWriterHostsTakeTurns: due host upserts (a hello waits for its
// host's) go out between update entries, not after every pending update.
func TestHostWriterHostsTakeTurns(t *testing.T) {
	r := &fakeRaft{}
	w := newHostWriter(r, testutil.Logger(t))
	for i := range 3 * writerMaxBatch {
		w.UpdateAssignment(healthyUpdate(i))
	}
	w.UpsertHost(&rollwavev1.Host{Id: "h1"})
	w.flush()
	var kinds []string
	for _, c := range r.commands() {
		switch c.(type) {
		case *rollwavev1.UpsertHostsCommand:
			kinds = append(kinds, "hosts")
		case *rollwavev1.UpdateAssignmentsCommand:
			kinds = append(kinds, "updates")
		}
	}
	if want := "[updates hosts updates updates]"; fmt.Sprint(kinds) != want {
		t.Fatalf("entries %v, want %s", kinds, want)
	}
}
