package raftfsm

import (
	"cmp"
	"slices"
	"sort"
	"sync"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// hostApp keys assignments: each host runs each app at most once.
type hostApp struct{ host, app string }

// State is the replicated state. Commands change it only through Apply;
// every query returns deep copies, so callers can never alias or mutate it.
// All methods are safe for concurrent use.
type State struct {
	mu sync.RWMutex

	hosts    map[string]*v1.Host
	cells    map[string]*v1.Cell
	apps     map[string]*v1.App
	releases map[string]*v1.Release
	// Full history per (host, app), ascending by generation; the last entry
	// is the current assignment.
	assignments map[hostApp][]*v1.Assignment
	// Ascending by seq.
	events       []*v1.Event
	freezes      map[string]*v1.FreezeWindow
	globalFreeze bool
	freezeReason string
	// ACL tokens by accessor id; aclBootstrapUnixNano is when ACLs were
	// bootstrapped (0: not yet).
	aclTokens            map[string]*v1.ACLToken
	aclBootstrapUnixNano int64
	appliedIndex         uint64

	// changed is closed, and replaced, after every applied entry and restore.
	changed chan struct{}
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		hosts:       map[string]*v1.Host{},
		cells:       map[string]*v1.Cell{},
		apps:        map[string]*v1.App{},
		releases:    map[string]*v1.Release{},
		assignments: map[hostApp][]*v1.Assignment{},
		freezes:     map[string]*v1.FreezeWindow{},
		aclTokens:   map[string]*v1.ACLToken{},
		changed:     make(chan struct{}),
	}
}

// notifyLocked wakes every Changed() waiter. Callers hold mu for writing.
func (s *State) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel that is closed after the next applied log entry
// (or restore). Take the channel, read the state, then wait on the channel:
// no change can slip between the read and the wait.
func (s *State) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// AppliedIndex is the raft index of the last entry applied (accepted,
// rejected or skipped alike) or restored from a snapshot.
func (s *State) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appliedIndex
}

func clone[M proto.Message](m M) M { return proto.Clone(m).(M) }

// cloneSorted copies the map's values ordered by key.
func cloneSorted[M proto.Message](m map[string]M) []M {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]M, 0, len(keys))
	for _, k := range keys {
		out = append(out, clone(m[k]))
	}
	return out
}

// cloneOrNil returns a copy of m[key], or nil when absent.
func cloneOrNil[M proto.Message](m map[string]M, key string) M {
	v, ok := m[key]
	if !ok {
		var zero M
		return zero
	}
	return clone(v)
}

// Hosts returns every host, sorted by id.
func (s *State) Hosts() []*v1.Host {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneSorted(s.hosts)
}

// Host returns one host, or nil.
func (s *State) Host(id string) *v1.Host {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneOrNil(s.hosts, id)
}

// Cells returns every cell, sorted by name.
func (s *State) Cells() []*v1.Cell {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneSorted(s.cells)
}

// Cell returns one cell, or nil.
func (s *State) Cell(name string) *v1.Cell {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneOrNil(s.cells, name)
}

// Apps returns every app, sorted by name.
func (s *State) Apps() []*v1.App {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneSorted(s.apps)
}

// App returns one app, or nil.
func (s *State) App(name string) *v1.App {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneOrNil(s.apps, name)
}

// Releases returns the releases of app ("" for every app) whose state is one
// of states (none for any state), sorted by creation time, then id.
func (s *State) Releases(app string, states ...v1.ReleaseState) []*v1.Release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*v1.Release
	for _, r := range s.releases {
		if app != "" && r.GetSpec().GetApp() != app {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, r.GetState()) {
			continue
		}
		out = append(out, clone(r))
	}
	slices.SortFunc(out, func(a, b *v1.Release) int {
		return cmp.Or(cmp.Compare(a.GetCreatedUnixNano(), b.GetCreatedUnixNano()), cmp.Compare(a.GetId(), b.GetId()))
	})
	return out
}

// Release returns one release, or nil.
func (s *State) Release(id string) *v1.Release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneOrNil(s.releases, id)
}

// ActiveRelease returns the app's non-terminal release, or nil.
func (s *State) ActiveRelease(app string) *v1.Release {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.apps[app]
	if !ok || a.GetActiveReleaseId() == "" {
		return nil
	}
	return cloneOrNil(s.releases, a.GetActiveReleaseId())
}

func compareAssignments(a, b *v1.Assignment) int {
	return cmp.Or(cmp.Compare(a.GetHost(), b.GetHost()), cmp.Compare(a.GetApp(), b.GetApp()),
		cmp.Compare(a.GetGeneration(), b.GetGeneration()))
}

// ReleaseAssignments returns every assignment (all generations, current or
// not) made for the release, sorted by host, then generation.
func (s *State) ReleaseAssignments(releaseID string) []*v1.Assignment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*v1.Assignment
	for _, hist := range s.assignments {
		for _, a := range hist {
			if a.GetReleaseId() == releaseID {
				out = append(out, clone(a))
			}
		}
	}
	slices.SortFunc(out, compareAssignments)
	return out
}

// HostAssignments returns the host's current assignment for each app, sorted by app.
func (s *State) HostAssignments(host string) []*v1.Assignment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*v1.Assignment
	for k, hist := range s.assignments {
		if k.host == host && len(hist) > 0 {
			out = append(out, clone(hist[len(hist)-1]))
		}
	}
	slices.SortFunc(out, compareAssignments)
	return out
}

// Assignment returns the current (highest-generation) assignment of app on
// host, or nil.
func (s *State) Assignment(host, app string) *v1.Assignment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if cur := s.currentLocked(host, app); cur != nil {
		return clone(cur)
	}
	return nil
}

func (s *State) currentLocked(host, app string) *v1.Assignment {
	hist := s.assignments[hostApp{host, app}]
	if len(hist) == 0 {
		return nil
	}
	return hist[len(hist)-1]
}

// Events returns audit events with seq > afterSeq, oldest first, for one
// release ("" for all), at most limit of them (limit <= 0: no limit).
func (s *State) Events(releaseID string, afterSeq uint64, limit int) []*v1.Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	start, _ := slices.BinarySearchFunc(s.events, afterSeq+1, func(e *v1.Event, seq uint64) int {
		return cmp.Compare(e.GetSeq(), seq)
	})
	var out []*v1.Event
	for _, e := range s.events[start:] {
		if limit > 0 && len(out) >= limit {
			break
		}
		if releaseID == "" || e.GetReleaseId() == releaseID {
			out = append(out, clone(e))
		}
	}
	return out
}

// Freezes returns the freeze windows sorted by start, then id.
func (s *State) Freezes() []*v1.FreezeWindow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := cloneSorted(s.freezes)
	slices.SortStableFunc(out, func(a, b *v1.FreezeWindow) int {
		return cmp.Compare(a.GetFromUnixNano(), b.GetFromUnixNano())
	})
	return out
}

// GlobalFreeze reports whether every rollout is frozen, and why.
func (s *State) GlobalFreeze() (bool, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.globalFreeze, s.freezeReason
}

// nextSeqLocked is the seq the next audit event gets. Derived from the log
// itself, so it needs no separate persisted counter.
func (s *State) nextSeqLocked() uint64 {
	if n := len(s.events); n > 0 {
		return s.events[n-1].GetSeq() + 1
	}
	return 1
}

// appendEventLocked records an audit event, assigning its seq.
func (s *State) appendEventLocked(e *v1.Event) {
	e.Seq = s.nextSeqLocked()
	s.events = append(s.events, e)
}
