package raftfsm

import (
	"cmp"
	"context"
	"crypto/subtle"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// State is the replicated state. Commands change it only through Apply;
// every query returns copies, so callers can never alias or mutate it.
// All methods are safe for concurrent use; reads take no lock (they read a
// memdb snapshot, see store.go).
type State struct {
	// mu serialises writers (Apply, Restore) and guards changed and
	// restored; appliedIndex is written under it.
	mu           sync.Mutex
	db           atomic.Pointer[memdb.MemDB]
	appliedIndex atomic.Uint64

	// changed is closed, and replaced, after every applied entry and restore.
	changed chan struct{}
	// restored is closed, and replaced, by every restore: watch channels of
	// the replaced memdb never close, so every Watch also waits on it.
	restored chan struct{}
}

// NewState returns an empty state.
func NewState() *State {
	s := &State{changed: make(chan struct{}), restored: make(chan struct{})}
	s.db.Store(newDB())
	return s
}

// read returns a point-in-time view of the state.
func (s *State) read() *view { return &view{tx: s.db.Load().Txn(false)} }

// notifyLocked wakes every Changed() waiter. Callers hold mu.
func (s *State) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel that is closed after the next applied log entry
// (or restore). Take the channel, read the state, then wait on the channel:
// no change can slip between the read and the wait. Every entry closes it:
// code that follows one release waits on WatchRelease instead.
func (s *State) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// AppliedIndex is the raft index of the last entry applied (accepted,
// rejected or skipped alike) or restored from a snapshot.
func (s *State) AppliedIndex() uint64 { return s.appliedIndex.Load() }

// Watch is a set of channels that close when the part of the state read
// to build it changes (or the state is restored from a snapshot). Take the
// watch, read the state, then Wait: no change can slip in between.
type Watch struct{ ws memdb.WatchSet }

// Add makes the watch also fire when ch is closed (a shutdown channel).
func (w Watch) Add(ch <-chan struct{}) { w.ws.Add(ch) }

// Wait blocks until a watched part of the state changes (true) or ctx ends
// (false). It starts no goroutine for up to 32 channels (memdb's watchFew).
func (w Watch) Wait(ctx context.Context) bool { return w.ws.WatchCtx(ctx) == nil }

// watch returns a view and a watch set holding the restore channel, taken
// together so a restore between them is not missed.
func (s *State) watch() (*view, memdb.WatchSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := memdb.NewWatchSet()
	ws.Add(s.restored)
	return s.read(), ws
}

// WatchRelease returns a watch that fires when what a release's
// orchestrator reads changes: the release itself, its assignments, its
// events, the freeze windows or the global freeze. Entries about other
// releases (and host heartbeats) leave it alone.
func (s *State) WatchRelease(id string) Watch {
	v, ws := s.watch()
	ch, _, err := v.tx.FirstWatch(tRelease, "id", strKey(id))
	if err != nil {
		panic(err) // schema error: a programming mistake
	}
	ws.Add(ch)
	ws.Add(each(v, tHist, "release", strKey(id), func(*v1.Assignment) bool { return false }))
	ws.Add(each(v, tEvent, "release", strKey(id), func(*v1.Event) bool { return false }))
	ws.Add(each(v, tFreeze, "id", nil, func(*v1.FreezeWindow) bool { return false }))
	mch, _, err := v.tx.FirstWatch(tMeta, "id", key("m"))
	if err != nil {
		panic(err)
	}
	ws.Add(mch)
	return Watch{ws}
}

// FreezesWatch returns the freeze windows (as Freezes) and a watch that
// fires when they change (or the state is restored), read together so no
// change slips in between.
func (s *State) FreezesWatch() ([]*v1.FreezeWindow, Watch) {
	v, ws := s.watch()
	ws.Add(each(v, tFreeze, "id", nil, func(*v1.FreezeWindow) bool { return false }))
	return sortFreezes(cloneAll[*v1.FreezeWindow](v, tFreeze, "id", nil)), Watch{ws}
}

// WatchApps returns a watch that fires when any app changes: a release is
// submitted, or one ends (the app's active release changes).
func (s *State) WatchApps() Watch {
	v, ws := s.watch()
	ws.Add(each(v, tApp, "id", nil, func(*v1.App) bool { return false }))
	return Watch{ws}
}

func clone[M proto.Message](m M) M { return proto.Clone(m).(M) }

// cloneAll returns copies of the objects of tbl whose idx key starts with
// prefix, in key order.
func cloneAll[M proto.Message](v *view, tbl, idx string, prefix key) []M {
	var out []M
	each(v, tbl, idx, prefix, func(m M) bool { out = append(out, clone(m)); return true })
	return out
}

// cloneOrNil returns a copy of m, or nil.
func cloneOrNil[M interface {
	proto.Message
	comparable
}](m M) M {
	var zero M
	if m == zero {
		return zero
	}
	return clone(m)
}

// Hosts returns every host, sorted by id.
func (s *State) Hosts() []*v1.Host { return cloneAll[*v1.Host](s.read(), tHost, "id", nil) }

// Host returns one host, or nil.
func (s *State) Host(id string) *v1.Host { return cloneOrNil(s.read().host(id)) }

// Cells returns every cell, sorted by name.
func (s *State) Cells() []*v1.Cell { return cloneAll[*v1.Cell](s.read(), tCell, "id", nil) }

// Cell returns one cell, or nil.
func (s *State) Cell(name string) *v1.Cell { return cloneOrNil(s.read().cell(name)) }

// Apps returns every app, sorted by name.
func (s *State) Apps() []*v1.App { return cloneAll[*v1.App](s.read(), tApp, "id", nil) }

// App returns one app, or nil.
func (s *State) App(name string) *v1.App { return cloneOrNil(s.read().app(name)) }

// Releases returns the releases of app ("" for every app) whose state is one
// of states (none for any state), sorted by creation time, then id.
func (s *State) Releases(app string, states ...v1.ReleaseState) []*v1.Release {
	idx, prefix := "id", key(nil)
	if app != "" {
		idx, prefix = "app", strKey(app)
	}
	var out []*v1.Release
	each(s.read(), tRelease, idx, prefix, func(r *v1.Release) bool {
		if len(states) == 0 || slices.Contains(states, r.GetState()) {
			out = append(out, clone(r))
		}
		return true
	})
	slices.SortFunc(out, compareReleases)
	return out
}

func compareReleases(a, b *v1.Release) int {
	return cmp.Or(cmp.Compare(a.GetCreatedUnixNano(), b.GetCreatedUnixNano()), cmp.Compare(a.GetId(), b.GetId()))
}

// ActiveReleases returns each app's non-terminal release, sorted by app.
func (s *State) ActiveReleases() []*v1.Release {
	v := s.read()
	var out []*v1.Release
	each(v, tApp, "id", nil, func(a *v1.App) bool {
		if id := a.GetActiveReleaseId(); id != "" {
			if r := v.release(id); r != nil {
				out = append(out, clone(r))
			}
		}
		return true
	})
	return out
}

// Release returns one release, or nil.
func (s *State) Release(id string) *v1.Release { return cloneOrNil(s.read().release(id)) }

// ActiveRelease returns the app's non-terminal release, or nil.
func (s *State) ActiveRelease(app string) *v1.Release {
	v := s.read()
	a := v.app(app)
	if a.GetActiveReleaseId() == "" {
		return nil
	}
	return cloneOrNil(v.release(a.GetActiveReleaseId()))
}

// ReleaseAssignments returns every assignment (all generations, current or
// not) made for the release, sorted by host, then app, then generation.
func (s *State) ReleaseAssignments(releaseID string) []*v1.Assignment {
	return cloneAll[*v1.Assignment](s.read(), tHist, "release", strKey(releaseID))
}

// LiveAssignments returns what the release's hosts run now: for each host
// the release assigned (sorted by host), the host's current assignment of
// that app while it still belongs to the release; a host that has moved
// on to another release is left out. One read, one copy per host returned
// (ReleaseAssignments and then Assignment per host made two copies and a
// read per assignment: ~10,000 copies for each orchestrator wake while a
// 5,000-host release finalizes).
func (s *State) LiveAssignments(releaseID string) []*v1.Assignment {
	out := s.LiveAssignmentsShared(releaseID)
	for i, a := range out {
		out[i] = clone(a)
	}
	return out
}

// LiveAssignmentsShared is LiveAssignments without the copies: the stored
// objects, shared and immutable, which the caller must not modify. The
// orchestrator reads a finalizing release's hosts with it on every
// wake-up: at 10,000 hosts the copies were ~3 MB of garbage each time, a
// few dozen times while the reports came in.
func (s *State) LiveAssignmentsShared(releaseID string) []*v1.Assignment {
	v := s.read()
	var out []*v1.Assignment
	done := "" // the host last added: the index is sorted by host
	each(v, tHist, "release", strKey(releaseID), func(a *v1.Assignment) bool {
		if len(out) > 0 && a.GetHost() == done {
			return true
		}
		if cur := v.current(a.GetHost(), a.GetApp()); cur != nil && cur.GetReleaseId() == releaseID {
			out = append(out, cur)
			done = a.GetHost()
		}
		return true
	})
	return out
}

// HostAssignments returns the host's current assignment for each app, sorted by app.
func (s *State) HostAssignments(host string) []*v1.Assignment {
	return cloneAll[*v1.Assignment](s.read(), tCur, "id", strKey(host))
}

// Assignments returns the current assignment of app on each of hosts (nil
// where there is none), read from one view: what the orchestrator reads
// for a phase's hosts on every wake (Assignment per host took a read
// transaction each).
func (s *State) Assignments(app string, hosts []string) []*v1.Assignment {
	out := s.AssignmentsShared(app, hosts)
	for i, a := range out {
		out[i] = cloneOrNil(a)
	}
	return out
}

// AssignmentsShared is Assignments without the copies: the stored
// objects, shared and immutable (the FSM stores a new object for every
// change), so the caller must not modify them. The orchestrator reads a
// phase's hosts with it on every wake-up while a phase deploys or bakes:
// at 2,500 hosts the copies were a third of each wake-up's time and most
// of its garbage.
func (s *State) AssignmentsShared(app string, hosts []string) []*v1.Assignment {
	v := s.read()
	out := make([]*v1.Assignment, len(hosts))
	var k key // one key buffer for every lookup (First keeps no reference)
	for i, h := range hosts {
		k = k[:0].str(h).str(app)
		out[i] = first[*v1.Assignment](v, tCur, k)
	}
	return out
}

// HasHost reports whether the host is registered, without copying it.
func (s *State) HasHost(id string) bool { return s.read().host(id) != nil }

// Assignment returns the current (highest-generation) assignment of app on
// host, or nil.
func (s *State) Assignment(host, app string) *v1.Assignment {
	return cloneOrNil(s.read().current(host, app))
}

// Events returns audit events with seq > afterSeq, oldest first, for one
// release ("" for all), at most limit of them (limit <= 0: no limit).
func (s *State) Events(releaseID string, afterSeq uint64, limit int) []*v1.Event {
	var out []*v1.Event
	s.read().eventsFrom(releaseID, afterSeq+1, func(e *v1.Event) bool {
		if limit > 0 && len(out) >= limit {
			return false
		}
		out = append(out, clone(e))
		return true
	})
	return out
}

// EachReleaseHistory calls fn with every release of app ("" for every
// app) and its events whose kind is one of kinds (every event when kinds
// is empty), oldest first, all from one point-in-time read. The release
// and events are the stored objects, shared and immutable, so that a
// scan over every release copies nothing: fn must neither modify them nor
// keep them after it returns (copy what it needs). fn returning false stops
// the scan.
func (s *State) EachReleaseHistory(app string, kinds []string, fn func(r *v1.Release, events []*v1.Event) bool) {
	v := s.read()
	idx, prefix := "id", key(nil)
	if app != "" {
		idx, prefix = "app", strKey(app)
	}
	var evs []*v1.Event
	each(v, tRelease, idx, prefix, func(r *v1.Release) bool {
		evs = evs[:0]
		v.eventsFrom(r.GetId(), 0, func(e *v1.Event) bool {
			if len(kinds) == 0 || slices.Contains(kinds, e.GetKind()) {
				evs = append(evs, e)
			}
			return true
		})
		return fn(r, evs)
	})
}

// Freezes returns the freeze windows sorted by start, then id.
func (s *State) Freezes() []*v1.FreezeWindow {
	return sortFreezes(cloneAll[*v1.FreezeWindow](s.read(), tFreeze, "id", nil))
}

// sortFreezes sorts windows by start (recurring ones, which have none,
// first), then id (the key order they come in).
func sortFreezes(out []*v1.FreezeWindow) []*v1.FreezeWindow {
	slices.SortStableFunc(out, func(a, b *v1.FreezeWindow) int {
		return cmp.Compare(a.GetFromUnixNano(), b.GetFromUnixNano())
	})
	return out
}

// GlobalFreeze reports whether every rollout is frozen, and why.
func (s *State) GlobalFreeze() (bool, string) {
	m := s.read().meta()
	return m.globalFreeze, m.freezeReason
}

// ACLBootstrapped reports whether ACLs were bootstrapped, and when.
func (s *State) ACLBootstrapped() (bool, int64) {
	m := s.read().meta()
	return m.aclBootstrapUnixNano != 0, m.aclBootstrapUnixNano
}

// ACLTokens returns every token, sorted by accessor id.
func (s *State) ACLTokens() []*v1.ACLToken { return cloneAll[*v1.ACLToken](s.read(), tACL, "id", nil) }

// ACLToken returns one token by accessor id, or nil.
func (s *State) ACLToken(accessor string) *v1.ACLToken {
	return cloneOrNil(s.read().aclToken(accessor))
}

// ResolveACLToken returns the token whose secret hashes to secretHash (hex
// sha256), or nil. It compares against every token in constant time per
// token, so the answer time does not tell how much of a hash matched.
func (s *State) ResolveACLToken(secretHash string) *v1.ACLToken {
	var found *v1.ACLToken
	want := []byte(secretHash)
	each(s.read(), tACL, "id", nil, func(t *v1.ACLToken) bool {
		if subtle.ConstantTimeCompare([]byte(t.GetSecretHash()), want) == 1 {
			found = t
		}
		return true
	})
	return cloneOrNil(found)
}
