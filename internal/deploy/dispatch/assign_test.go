package dispatch

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// fsmRaft applies to a real FSM, as the leader's Apply does; a
// CreateAssignments of app hold waits until release is closed.
type fsmRaft struct {
	t       *testing.T
	f       *raftfsm.FSM
	mu      sync.Mutex
	hold    string
	held    chan struct{} // closed when a held apply is waiting
	once    sync.Once
	release chan struct{}
}

func (r *fsmRaft) State() *raftfsm.State { return r.f.State() }

func (r *fsmRaft) Apply(typ raftfsm.MessageType, m proto.Message) (any, error) {
	if c, ok := m.(*rollwavev1.CreateAssignmentsCommand); ok && r.hold != "" && c.GetAssignments()[0].GetApp() == r.hold {
		r.once.Do(func() { close(r.held) })
		select {
		case <-r.release:
		case <-time.After(time.Minute):
			r.t.Error("held apply never released")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := raftfsm.Encode(typ, m)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.f.ApplyEntry(r.f.State().AppliedIndex()+1, data)
}

type nopAgents struct{}

func (nopAgents) Send(string, *rollwavev1.CoordinatorMessage) bool { return true }

// Releases of different apps assign side by side: while one app's
// CreateAssignments waits for raft, another app's goes through (one lock
// for every app made 20 releases at once queue behind each other's
// commits). The same app still waits: generations are read, then
// committed.
func TestAssignHostsLocksPerApp(t *testing.T) {
	r := &fsmRaft{t: t, f: raftfsm.New(testutil.Logger(t)), hold: "a", held: make(chan struct{}), release: make(chan struct{})}
	now := time.Now().UnixNano()
	hosts := []*rollwavev1.Host{{Id: "h1", Cell: "c1"}, {Id: "h2", Cell: "c1"}}
	if _, err := r.Apply(raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: hosts}); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"a", "b"} {
		rel := &rollwavev1.Release{Id: app + "-1", Spec: &rollwavev1.ReleaseSpec{Name: app + "-1", App: app, Version: "2"},
			State: rollwavev1.ReleaseState_RELEASE_STATE_PENDING, Phases: []*rollwavev1.Phase{{Index: 0, Hosts: []string{"h1", "h2"}}},
			CreatedUnixNano: now, UpdatedUnixNano: now}
		if _, err := r.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Release: rel, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{TimeUnixNano: now, ReleaseId: rel.GetId(),
			State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, Actor: "test", CurrentPhase: -1}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := New(Config{Raft: r, Agents: nopAgents{}, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { _, err := d.AssignHosts("a-1", 0, []string{"h1", "h2"}); aDone <- err }()
	select {
	case <-r.held:
	case <-time.After(30 * time.Second):
		t.Fatal("app a's CreateAssignments never reached raft")
	}
	// a is inside its raft write, holding its lock; b must not wait.
	bDone := make(chan error, 1)
	go func() { _, err := d.AssignHosts("b-1", 0, []string{"h1", "h2"}); bDone <- err }()
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("assign b: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("app b's assignment waited for app a's raft write")
	}
	// A second assignment of a waits for the first (same app).
	a2Done := make(chan error, 1)
	go func() { _, err := d.AssignHosts("a-1", 0, []string{"h1"}); a2Done <- err }()
	select {
	case <-a2Done:
		t.Fatal("a second assignment of app a did not wait for the first")
	case <-aDone:
		t.Fatal("the held apply returned before it was released")
	case <-time.After(200 * time.Millisecond):
		// Not a synchronisation: a bounded look for a wrong early return.
	}
	close(r.release)
	for name, ch := range map[string]chan error{"a": aDone, "a again": a2Done} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("assign %s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("assign %s never returned", name)
		}
	}
	st := r.f.State()
	for _, app := range []string{"a", "b"} {
		for _, h := range []string{"h1", "h2"} {
			if a := st.Assignment(h, app); a == nil || a.GetGeneration() != 1 {
				t.Errorf("%s/%s: assignment %v, want generation 1 (assigned once)", h, app, a)
			}
		}
	}
	if len(d.appLocks.locks) != 0 {
		t.Errorf("%d app locks left after every holder returned", len(d.appLocks.locks))
	}
}

// TestProgressUpdatesSkipsWhatRaftHas: a report of the state raft already
// holds for that generation (an agent answering a resent order again) is
// not written; a report further along is, with the steps in between.
func TestProgressUpdatesSkipsWhatRaftHas(t *testing.T) {
	r := &fsmRaft{t: t, f: raftfsm.New(testutil.Logger(t))}
	now := time.Now().UnixNano()
	if _, err := r.Apply(raftfsm.UpsertHosts, &rollwavev1.UpsertHostsCommand{TimeUnixNano: now, Hosts: []*rollwavev1.Host{{Id: "h1", Cell: "c1"}}}); err != nil {
		t.Fatal(err)
	}
	rel := &rollwavev1.Release{Id: "r1", Spec: &rollwavev1.ReleaseSpec{Name: "r1", App: "a", Version: "2"},
		State: rollwavev1.ReleaseState_RELEASE_STATE_PENDING, Phases: []*rollwavev1.Phase{{Index: 0, Hosts: []string{"h1"}}},
		CreatedUnixNano: now, UpdatedUnixNano: now}
	if _, err := r.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Release: rel, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{TimeUnixNano: now, ReleaseId: "r1",
		State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, Actor: "test", CurrentPhase: -1}); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Raft: r, Agents: nopAgents{}, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AssignHosts("r1", 0, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	staging := &rollwavev1.AssignmentProgress{App: "a", Generation: 1, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING}
	if us := d.ProgressUpdates("h1", staging); len(us) != 1 {
		t.Fatalf("staging from assigned: %d updates, want 1", len(us))
	}
	if _, err := r.Apply(raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: now, Updates: d.ProgressUpdates("h1", staging)}); err != nil {
		t.Fatal(err)
	}
	if us := d.ProgressUpdates("h1", staging); len(us) != 0 {
		t.Fatalf("staging again once raft has it: %d updates, want none", len(us))
	}
	healthy := &rollwavev1.AssignmentProgress{App: "a", Generation: 1, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY}
	if us := d.ProgressUpdates("h1", healthy); len(us) != 3 {
		t.Fatalf("healthy from staging: %d updates, want 3 (switched, baking, healthy)", len(us))
	}
}
