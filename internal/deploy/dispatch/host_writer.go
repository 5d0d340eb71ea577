package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

const (
	// writerFlushEvery and writerMaxBatch bound how much host traffic turns
	// into one raft entry: 10,000 hosts must not mean 10,000 entries.
	// 20 ms: the last host's report of a phase waits at most this long to
	// be committed, which sets most of a phase's control-plane overhead
	// (docs/performance.md). An idle writer writes nothing.
	writerFlushEvery = 20 * time.Millisecond
	// writerNudgeAt pending items flush at once instead of at the next
	// tick; one entry then takes up to writerMaxBatch of them. Entries are
	// written one after another (each waits for its commit), so what
	// piles up during one commit goes in the next: at 10,000 hosts a
	// phase of 2,500 makes ~10,000 reports, and at 256 per entry their 40
	// commits in a row were most of the phase's overhead (6.5 s on a
	// shared 2-core machine). 1,024 updates are ~200 KiB of entry.
	writerNudgeAt  = 256
	writerMaxBatch = 1024
	// contactFlushEvery is how long a host upsert that only moves last
	// contact (PersistContact) may wait for company. Every host persists
	// its contact every 30 s (the leader keeps the exact time in memory),
	// so at 5,000 hosts ~170 arrive per second: written as they come, they
	// made ~50 small raft entries a second, each a log write and fsync on
	// every server; held for a second, one entry a second.
	contactFlushEvery = time.Second
)

// ErrWriterStopped tells a waiter that leadership ended before its write
// was committed.
var ErrWriterStopped = errors.New("leadership ended before the write was committed")

// HostWriter batches host registrations and assignment progress into raft
// entries. It runs only on the leader. Pending host upserts are keyed by host,
// so the queue never grows past the fleet size; assignment updates are kept
// in arrival order (each is a state transition and must not be merged).
// A caller that must know its write is in raft before it goes on (a hello)
// waits on it (Commit); the write still goes out in the same batches.
type HostWriter struct {
	raft Raft
	log  *slog.Logger
	kick chan struct{}
	now  func() time.Time // time.Now; tests set it

	mu    sync.Mutex
	hosts map[string]*rollwavev1.Host
	// hostsDue is when the pending hosts must be written: at the next
	// flush for a registration or changed facts, up to contactFlushEvery
	// later when every pending one only moves last contact. Zero when
	// none is pending.
	hostsDue time.Time
	updates  []*rollwavev1.AssignmentUpdate
	// hostWaiters[id] are told when hosts[id] (or a newer upsert of the
	// same host) is committed; updateWaiters[i], when updates[i] is (nil
	// for most).
	hostWaiters   map[string][]chan error
	updateWaiters []chan error
	// queued is the newest update of each host and app that is pending
	// or being written (removed once committed): an agent's report that
	// repeats it (the same generation and state: a resent order answered
	// again, a hello repeating its last report) is dropped, since the FSM
	// would skip the second as an illegal same-state step anyway. At
	// 10,000 hosts, resent finalize orders answered while the first
	// reports waited for raft doubled the last phase's writes.
	queued map[hostApp]*rollwavev1.AssignmentUpdate
	// hostsTurn: the next entry is the due hosts' (take alternates).
	hostsTurn bool
}

type hostApp struct{ host, app string }

func updateKey(u *rollwavev1.AssignmentUpdate) hostApp { return hostApp{u.GetHost(), u.GetApp()} }

func newHostWriter(r Raft, log *slog.Logger) *HostWriter {
	return &HostWriter{raft: r, log: log, kick: make(chan struct{}, 1), now: time.Now, hosts: map[string]*rollwavev1.Host{}, hostWaiters: map[string][]chan error{}, queued: map[hostApp]*rollwavev1.AssignmentUpdate{}}
}

// Commit queues a host upsert and assignment updates like UpsertHost and
// UpdateAssignment, flushes at once, and waits until all of them are
// committed to raft, ctx ends or leadership ends. Updates are written in
// order, so the last one being committed means they all are.
func (w *HostWriter) Commit(ctx context.Context, h *rollwavev1.Host, updates []*rollwavev1.AssignmentUpdate) error {
	hostDone := make(chan error, 1)
	var updDone chan error
	w.mu.Lock()
	w.queueHostLocked(h, w.now())
	w.hostWaiters[h.GetId()] = append(w.hostWaiters[h.GetId()], hostDone)
	if len(updates) > 0 {
		updDone = make(chan error, 1)
		w.updates = append(w.updates, updates...)
		for _, u := range updates {
			w.queued[updateKey(u)] = u
		}
		for range updates[:len(updates)-1] {
			w.updateWaiters = append(w.updateWaiters, nil)
		}
		w.updateWaiters = append(w.updateWaiters, updDone)
	}
	w.mu.Unlock()
	w.nudge()
	for _, ch := range []chan error{hostDone, updDone} {
		if ch == nil {
			continue
		}
		select {
		case err := <-ch:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the write to raft: %w", ctx.Err())
		}
	}
	return nil
}

// tell sends err to each waiter (each has room for one value).
func tell(waiters []chan error, err error) {
	for _, ch := range waiters {
		if ch != nil {
			ch <- err
		}
	}
}

// UpsertHost queues a host registration or news about a host (changed
// slot facts), written with the next flush; a newer one of the same host
// replaces it.
func (w *HostWriter) UpsertHost(h *rollwavev1.Host) { w.queueHost(h, w.now()) }

// PersistContact queues a host upsert whose only news is its last
// contact: it may wait up to contactFlushEvery to share an entry with
// others (an earlier write of any host takes it along). A newer upsert of
// the same host replaces it; it never delays one already due.
func (w *HostWriter) PersistContact(h *rollwavev1.Host) {
	w.queueHost(h, w.now().Add(contactFlushEvery))
}

func (w *HostWriter) queueHost(h *rollwavev1.Host, due time.Time) {
	w.mu.Lock()
	w.queueHostLocked(h, due)
	n := len(w.hosts)
	w.mu.Unlock()
	if n >= writerNudgeAt {
		w.nudge()
	}
}

func (w *HostWriter) queueHostLocked(h *rollwavev1.Host, due time.Time) {
	w.hosts[h.GetId()] = h
	if w.hostsDue.IsZero() || due.Before(w.hostsDue) {
		w.hostsDue = due
	}
}

// UpdateAssignment queues an assignment step, in order, unless it repeats
// the newest step of the same host and app still waiting for raft.
func (w *HostWriter) UpdateAssignment(u *rollwavev1.AssignmentUpdate) {
	k := updateKey(u)
	w.mu.Lock()
	if last := w.queued[k]; last != nil && last.GetGeneration() == u.GetGeneration() && last.GetState() == u.GetState() {
		w.mu.Unlock()
		return
	}
	w.queued[k] = u
	w.updates = append(w.updates, u)
	w.updateWaiters = append(w.updateWaiters, nil)
	n := len(w.updates)
	w.mu.Unlock()
	if n >= writerNudgeAt {
		w.nudge()
	}
}

func (w *HostWriter) nudge() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writerInFlight is how many entries the writer keeps in raft at once.
// Waiting for each entry's commit before writing the next made a big
// phase's reports go out as commits in a row (at 10,000 hosts, a phase of
// 2,500 hosts is ~10,000 reports: 10 entries of 1,024, ~170 ms each on a
// loaded 2-core machine, while the leader used under half a core). With
// several in flight, raft's leader writes them to its log and sends them
// to followers together (one fsync each side for several entries).
// Entries are handed to raft in order by one goroutine, so the log keeps
// the writer's order.
const writerInFlight = 4

// AsyncRaft is a Raft that can hand an entry to raft without waiting for
// its commit (Server's: hashicorp/raft's Apply returns a future once the
// entry is queued, in call order). The HostWriter uses it when the Raft
// it is given has it; a plain Raft's entries are written one at a time.
type AsyncRaft interface {
	Raft
	// ApplyAsync queues cmd as the next raft entry and returns a function
	// that waits for its commit and returns what Apply would.
	ApplyAsync(t raftfsm.MessageType, cmd proto.Message) (wait func() (any, error))
}

// entry is one raft entry the writer has handed to raft: a host batch or
// an update batch, their waiters, and its outcome.
type entry struct {
	hosts         []*rollwavev1.Host
	hostWaiters   map[string][]chan error
	updates       []*rollwavev1.AssignmentUpdate
	updateWaiters []chan error
	done          chan struct{}
	err           error // set before done closes
}

// Run writes until ctx (leadership) ends; what is still pending then is
// dropped, since agents resend their state to the next leader. Entries
// already handed to raft are waited for first (bounded by raft's apply
// timeout).
func (w *HostWriter) Run(ctx context.Context) {
	t := time.NewTicker(writerFlushEvery)
	defer t.Stop()
	var p pipeline
	for {
		var oldest <-chan struct{}
		if len(p.inflight) > 0 {
			oldest = p.inflight[0].done
		}
		select {
		case <-ctx.Done():
			for len(p.inflight) > 0 {
				<-p.inflight[0].done
				w.complete(&p)
			}
			w.mu.Lock()
			w.hosts, w.hostsDue = map[string]*rollwavev1.Host{}, time.Time{}
			w.updates = nil
			w.queued = map[hostApp]*rollwavev1.AssignmentUpdate{}
			hw, uw := w.hostWaiters, w.updateWaiters
			w.hostWaiters, w.updateWaiters = map[string][]chan error{}, nil
			w.mu.Unlock()
			for _, ws := range hw {
				tell(ws, ErrWriterStopped)
			}
			tell(uw, ErrWriterStopped)
			return
		case <-oldest:
			w.complete(&p)
		case <-t.C:
		case <-w.kick:
		}
		w.submit(&p)
	}
}

// flush writes what is due now and waits for it (tests; Run pipelines).
func (w *HostWriter) flush() {
	var p pipeline
	for range 100 { // bounded: a raft that always fails must not hang a test
		w.submit(&p)
		if len(p.inflight) == 0 {
			return
		}
		for len(p.inflight) > 0 {
			<-p.inflight[0].done
			w.complete(&p)
		}
	}
}

// pipeline is the writer's entries in raft, oldest first. After a failed
// one it hands raft nothing new until every entry in flight is done, then
// queues again, in order, the updates of the failed entry and of every
// entry after it (succeeded or not): a later entry may have committed
// steps that the FSM skipped because the failed one's earlier steps were
// missing, and written again after those, in order, they apply; the ones
// that did apply are skipped as repeats. Hosts of failed entries go back
// unless a later entry wrote the same host.
type pipeline struct {
	inflight []*entry
	failed   []*entry // in order: the first failed entry and all after it
}

// submit hands raft what is due, while fewer than writerInFlight entries
// are in flight (one at a time without AsyncRaft) and none failed.
func (w *HostWriter) submit(p *pipeline) {
	limit := 1
	if _, ok := w.raft.(AsyncRaft); ok {
		limit = writerInFlight
	}
	for len(p.inflight) < limit && len(p.failed) == 0 {
		e := w.take()
		if e == nil {
			return
		}
		w.start(e)
		p.inflight = append(p.inflight, e)
	}
}

// take removes the next entry's worth from the queues: pending updates
// (up to writerMaxBatch), or the pending hosts once any of them is due
// (or a full batch waits), taking turns; nil when nothing is due.
func (w *HostWriter) take() *entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	hostsDue := len(w.hosts) > 0 && (len(w.hosts) >= writerNudgeAt || !w.now().Before(w.hostsDue))
	// Due hosts and updates take turns: a hello waiting for its host
	// is not held behind a big phase's stream of reports.
	if n := min(len(w.updates), writerMaxBatch); n > 0 && (!hostsDue || !w.hostsTurn) {
		e := &entry{updates: append([]*rollwavev1.AssignmentUpdate(nil), w.updates[:n]...),
			updateWaiters: append([]chan error(nil), w.updateWaiters[:n]...)}
		w.updates = w.updates[n:]
		w.updateWaiters = w.updateWaiters[n:]
		w.hostsTurn = true
		return e
	}
	if !hostsDue {
		return nil
	}
	w.hostsTurn = false
	e := &entry{hostWaiters: map[string][]chan error{}}
	for id, h := range w.hosts {
		e.hosts = append(e.hosts, h)
		if ws := w.hostWaiters[id]; len(ws) > 0 {
			e.hostWaiters[id] = ws
			delete(w.hostWaiters, id)
		}
		delete(w.hosts, id)
		if len(e.hosts) == writerMaxBatch {
			break
		}
	}
	if len(w.hosts) == 0 {
		w.hostsDue = time.Time{}
	}
	return e
}

// start hands e to raft: queued in order now, its commit awaited by a
// goroutine that closes e.done (at most writerInFlight such goroutines,
// each bounded by raft's apply timeout).
func (w *HostWriter) start(e *entry) {
	now := w.now().UnixNano()
	var t raftfsm.MessageType
	var cmd proto.Message
	if len(e.updates) > 0 {
		t, cmd = raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: now, Updates: e.updates}
	} else {
		t, cmd = raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: e.hosts}
	}
	e.done = make(chan struct{})
	ar, ok := w.raft.(AsyncRaft)
	if !ok {
		_, e.err = w.raft.Apply(t, cmd)
		close(e.done)
		return
	}
	wait := ar.ApplyAsync(t, cmd)
	go func() {
		_, e.err = wait()
		close(e.done)
	}()
}

// complete takes the oldest entry in flight, which is done: its waiters
// are told, or it joins p.failed; once nothing is in flight, the failed
// entries go back to the queues.
func (w *HostWriter) complete(p *pipeline) {
	e := p.inflight[0]
	p.inflight = p.inflight[1:]
	switch {
	case e.err != nil:
		if len(e.updates) > 0 {
			w.log.Warn("write assignment progress batch; will retry", "updates", len(e.updates), "error", e.err)
		} else {
			w.log.Warn("write host batch; will retry", "hosts", len(e.hosts), "error", e.err)
		}
		p.failed = append(p.failed, e)
	case len(p.failed) > 0:
		// Committed after an entry that failed: told, and its updates
		// written again after the failed one's (pipeline).
		for _, ws := range e.hostWaiters {
			tell(ws, nil)
		}
		tell(e.updateWaiters, nil)
		e.hostWaiters = nil
		e.updateWaiters = make([]chan error, len(e.updates))
		p.failed = append(p.failed, e)
	default:
		w.committed(e.updates)
		for _, ws := range e.hostWaiters {
			tell(ws, nil)
		}
		tell(e.updateWaiters, nil)
	}
	if len(p.inflight) > 0 || len(p.failed) == 0 {
		return
	}
	var us []*rollwavev1.AssignmentUpdate
	var uws []chan error
	written := map[string]bool{}
	for i := len(p.failed) - 1; i >= 0; i-- {
		e := p.failed[i]
		if e.err == nil {
			for _, h := range e.hosts {
				written[h.GetId()] = true
			}
			continue
		}
		var hs []*rollwavev1.Host
		for _, h := range e.hosts {
			if !written[h.GetId()] {
				hs = append(hs, h)
				continue
			}
			// A later entry wrote the host, with the same or newer
			// facts: its waiters are served.
			tell(e.hostWaiters[h.GetId()], nil)
			delete(e.hostWaiters, h.GetId())
		}
		if len(e.hosts) > 0 {
			w.requeueHosts(hs, e.hostWaiters)
		}
	}
	for _, e := range p.failed {
		us = append(us, e.updates...)
		uws = append(uws, e.updateWaiters...)
	}
	if len(us) > 0 {
		w.requeueUpdates(us, uws)
	}
	p.failed = nil
}

// requeueHosts puts back a batch that failed, unless a newer upsert of the
// same host came meanwhile; a host's waiters then wait for the newer one
// (it carries the same or newer facts).
func (w *HostWriter) requeueHosts(hs []*rollwavev1.Host, waiters map[string][]chan error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hs {
		if _, newer := w.hosts[h.GetId()]; !newer {
			w.hosts[h.GetId()] = h
		}
	}
	// They were due: they stay due (the next flush retries them).
	if now := w.now(); w.hostsDue.IsZero() || now.Before(w.hostsDue) {
		w.hostsDue = now
	}
	for id, ws := range waiters {
		w.hostWaiters[id] = append(w.hostWaiters[id], ws...)
	}
}

// committed forgets updates that raft now holds: a report repeating one
// of them is no longer dropped here (the FSM skips it, and
// Dispatcher.ProgressUpdates drops it before it gets here).
func (w *HostWriter) committed(us []*rollwavev1.AssignmentUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range us {
		if k := updateKey(u); w.queued[k] == u {
			delete(w.queued, k)
		}
	}
}

func (w *HostWriter) requeueUpdates(us []*rollwavev1.AssignmentUpdate, waiters []chan error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates = append(us, w.updates...)
	w.updateWaiters = append(waiters, w.updateWaiters...)
}
