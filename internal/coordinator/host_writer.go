package coordinator

import (
	"context"
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
	writerMaxBatch   = 256
)

// hostWriter batches host registrations and assignment progress into raft
// entries. It runs only on the leader. Pending host upserts are keyed by host,
// so the queue never grows past the fleet size; assignment updates are kept
// in arrival order (each is a state transition and must not be merged).
type hostWriter struct {
	s    *Server
	kick chan struct{}

	mu      sync.Mutex
	hosts   map[string]*rollwavev1.Host
	updates []*rollwavev1.AssignmentUpdate
}

func newHostWriter(s *Server) *hostWriter {
	return &hostWriter{s: s, kick: make(chan struct{}, 1), hosts: map[string]*rollwavev1.Host{}}
}

func (w *hostWriter) upsertHost(h *rollwavev1.Host) {
	w.mu.Lock()
	w.hosts[h.GetId()] = h
	n := len(w.hosts)
	w.mu.Unlock()
	if n >= writerMaxBatch {
		w.nudge()
	}
}

func (w *hostWriter) updateAssignment(u *rollwavev1.AssignmentUpdate) {
	w.mu.Lock()
	w.updates = append(w.updates, u)
	n := len(w.updates)
	w.mu.Unlock()
	if n >= writerMaxBatch {
		w.nudge()
	}
}

func (w *hostWriter) nudge() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run flushes until ctx (leadership) ends; what is still pending then is
// dropped, since agents resend their state to the next leader.
func (w *hostWriter) run(ctx context.Context) {
	t := time.NewTicker(writerFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.hosts = map[string]*rollwavev1.Host{}
			w.updates = nil
			w.mu.Unlock()
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flush()
	}
}

// Flush writes everything pending now (tests and shutdown use it too).
func (w *hostWriter) flush() {
	w.mu.Lock()
	var hosts []*rollwavev1.Host
	for id, h := range w.hosts {
		hosts = append(hosts, h)
		delete(w.hosts, id)
		if len(hosts) == writerMaxBatch {
			break
		}
	}
	var updates []*rollwavev1.AssignmentUpdate
	if n := min(len(w.updates), writerMaxBatch); n > 0 {
		updates = append(updates, w.updates[:n]...)
		w.updates = w.updates[n:]
	}
	more := len(w.hosts) > 0 || len(w.updates) > 0
	w.mu.Unlock()

	now := time.Now().UnixNano()
	if len(hosts) > 0 {
		if err := w.s.applyErr(raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: hosts}); err != nil {
			w.s.log.Warn("write host batch; will retry", "hosts", len(hosts), "error", err)
			w.requeueHosts(hosts)
		}
	}
	if len(updates) > 0 {
		if err := w.s.applyErr(raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: now, Updates: updates}); err != nil {
			w.s.log.Warn("write assignment progress batch; will retry", "updates", len(updates), "error", err)
			w.requeueUpdates(updates)
		}
	}
	if more {
		w.nudge()
	}
}

func (w *hostWriter) requeueHosts(hs []*rollwavev1.Host) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hs {
		if _, newer := w.hosts[h.GetId()]; !newer {
			w.hosts[h.GetId()] = h
		}
	}
}

func (w *hostWriter) requeueUpdates(us []*rollwavev1.AssignmentUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates = append(us, w.updates...)
}
