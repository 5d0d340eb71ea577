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
}

func newHostWriter(r Raft, log *slog.Logger) *HostWriter {
	return &HostWriter{raft: r, log: log, kick: make(chan struct{}, 1), now: time.Now, hosts: map[string]*rollwavev1.Host{}, hostWaiters: map[string][]chan error{}}
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

// UpdateAssignment queues an assignment step, in order.
func (w *HostWriter) UpdateAssignment(u *rollwavev1.AssignmentUpdate) {
	w.mu.Lock()
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

// Run flushes until ctx (leadership) ends; what is still pending then is
// dropped, since agents resend their state to the next leader.
func (w *HostWriter) Run(ctx context.Context) {
	t := time.NewTicker(writerFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.hosts, w.hostsDue = map[string]*rollwavev1.Host{}, time.Time{}
			w.updates = nil
			hw, uw := w.hostWaiters, w.updateWaiters
			w.hostWaiters, w.updateWaiters = map[string][]chan error{}, nil
			w.mu.Unlock()
			for _, ws := range hw {
				tell(ws, ErrWriterStopped)
			}
			tell(uw, ErrWriterStopped)
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flush()
	}
}

// flush writes what is due now: every pending update, and the pending
// hosts once any of them is due (or a full batch waits).
func (w *HostWriter) flush() {
	w.mu.Lock()
	var hosts []*rollwavev1.Host
	hostWaiters := map[string][]chan error{}
	hostsDue := len(w.hosts) >= writerNudgeAt || !w.now().Before(w.hostsDue)
	if hostsDue {
		for id, h := range w.hosts {
			hosts = append(hosts, h)
			if ws := w.hostWaiters[id]; len(ws) > 0 {
				hostWaiters[id] = ws
				delete(w.hostWaiters, id)
			}
			delete(w.hosts, id)
			if len(hosts) == writerMaxBatch {
				break
			}
		}
	}
	var updates []*rollwavev1.AssignmentUpdate
	var updateWaiters []chan error
	if n := min(len(w.updates), writerMaxBatch); n > 0 {
		updates = append(updates, w.updates[:n]...)
		updateWaiters = append(updateWaiters, w.updateWaiters[:n]...)
		w.updates = w.updates[n:]
		w.updateWaiters = w.updateWaiters[n:]
	}
	if len(w.hosts) == 0 {
		w.hostsDue = time.Time{}
	}
	more := (hostsDue && len(w.hosts) > 0) || len(w.updates) > 0
	w.mu.Unlock()

	now := w.now().UnixNano()
	if len(hosts) > 0 {
		if _, err := w.raft.Apply(raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: hosts}); err != nil {
			w.log.Warn("write host batch; will retry", "hosts", len(hosts), "error", err)
			w.requeueHosts(hosts, hostWaiters)
		} else {
			for _, ws := range hostWaiters {
				tell(ws, nil)
			}
		}
	}
	if len(updates) > 0 {
		if _, err := w.raft.Apply(raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: now, Updates: updates}); err != nil {
			w.log.Warn("write assignment progress batch; will retry", "updates", len(updates), "error", err)
			w.requeueUpdates(updates, updateWaiters)
		} else {
			tell(updateWaiters, nil)
		}
	}
	if more {
		w.nudge()
	}
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

func (w *HostWriter) requeueUpdates(us []*rollwavev1.AssignmentUpdate, waiters []chan error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates = append(us, w.updates...)
	w.updateWaiters = append(waiters, w.updateWaiters...)
}
