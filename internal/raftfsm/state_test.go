package raftfsm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestQueriesReturnCopies(t *testing.T) {
	f := richState(t)
	s := f.State()
	before := s.Dump()
	s.Host("h1").Cell = "mutated"
	s.Hosts()[0].Labels = map[string]string{"x": "y"}
	s.Release("api-1").Phases[0].State = psFailed
	s.Releases("")[0].Spec.App = "mutated"
	s.ActiveRelease("api").State = rsFailed
	s.App("api").ActiveReleaseId = ""
	s.Apps()[0].Name = "mutated"
	s.Cell("eu-1").Risk = 99
	s.Cells()[0].Risk = 99
	s.Assignment("h1", "api").State = asFinalized
	s.HostAssignments("h1")[0].Generation = 99
	s.ReleaseAssignments("api-1")[0].Generation = 99
	s.LiveAssignments("api-1")[0].Generation = 99
	s.Assignments("api", []string{"h1"})[0].State = asFinalized
	s.Events("", 0, 0)[0].Seq = 99
	s.Freezes()[0].Id = "mutated"
	if s.Dump() != before {
		t.Fatal("mutating query results changed the state")
	}
}

func TestQueriesMissing(t *testing.T) {
	s := New(nil).State()
	if s.Host("x") != nil || s.Cell("x") != nil || s.App("x") != nil || s.Release("x") != nil ||
		s.Assignment("x", "y") != nil || s.ActiveRelease("x") != nil || s.HasHost("x") || s.Assignments("y", []string{"x"})[0] != nil {
		t.Error("missing objects should be nil")
	}
	if len(s.Hosts())+len(s.Releases(""))+len(s.Events("", 0, 0))+len(s.HostAssignments("x")) != 0 {
		t.Error("empty state returned objects")
	}
}

// AssignmentsShared reads what Assignments reads, in the hosts' order
// with nil where a host has none, and hands out the stored objects: the
// next change stores a new object, so one read is never changed under
// its reader.
func TestAssignmentsSharedMatchesAssignments(t *testing.T) {
	f := richState(t)
	s := f.State()
	hosts := []string{"nope", "h1", "h2", "h3", "h1"}
	copies, shared := s.Assignments("api", hosts), s.AssignmentsShared("api", hosts)
	if len(shared) != len(hosts) {
		t.Fatalf("%d assignments for %d hosts", len(shared), len(hosts))
	}
	found := 0
	for i := range hosts {
		if !proto.Equal(copies[i], shared[i]) {
			t.Errorf("host %s: shared %v, copy %v", hosts[i], shared[i], copies[i])
		}
		if shared[i] != nil {
			found++
			if shared[i] == copies[i] {
				t.Errorf("host %s: Assignments returned the stored object", hosts[i])
			}
		}
	}
	if shared[0] != nil || found == 0 {
		t.Fatalf("want nil for an unknown host and some found: %v", shared)
	}
	if shared[1] != shared[4] {
		t.Error("two reads of one host's assignment in one call are different objects")
	}
	if s.AssignmentsShared("api", hosts)[1] != shared[1] {
		t.Error("with no change between them, two reads should share the stored object")
	}
	if got := s.AssignmentsShared("other-app", hosts); slices.ContainsFunc(got, func(a *v1.Assignment) bool { return a != nil }) {
		t.Errorf("another app's assignments: %v", got)
	}
}

func TestReleasesSortedByCreatedThenID(t *testing.T) {
	f := New(testutil.Logger(t))
	at := func(id string, created int64) cmd {
		r := releaseMsg(id, "app-"+id, 1)
		r.CreatedUnixNano = created
		return cmd{SubmitRelease, &v1.SubmitReleaseCommand{Release: r}}
	}
	mustApply(t, f, at("c", 5), at("b", 10), at("a", 10), at("d", 1))
	var got []string
	for _, r := range f.State().Releases("", rsPending) {
		got = append(got, r.GetId())
	}
	if want := "d c a b"; strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", strings.Join(got, " "), want)
	}
	if n := len(f.State().Releases("", rsRunning)); n != 0 {
		t.Errorf("%d running", n)
	}
	if n := len(f.State().Releases("app-a")); n != 1 {
		t.Errorf("app-a has %d releases", n)
	}
}

func TestChangedClosesOnApply(t *testing.T) {
	f := New(testutil.Logger(t))
	ch := f.State().Changed()
	select {
	case <-ch:
		t.Fatal("closed before any apply")
	default:
	}
	mustApply(t, f, hostsCmd("eu-1", "h1"))
	select {
	case <-ch:
	default:
		t.Fatal("not closed after apply")
	}
	next := f.State().Changed()
	if next == ch {
		t.Fatal("channel not replaced")
	}
	select {
	case <-next:
		t.Fatal("new channel already closed")
	default:
	}
	// Restore signals too.
	data := persist(t, f)
	if err := f.Restore(nopCloser(data)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next:
	default:
		t.Fatal("not closed after restore")
	}
}

func TestCheckInvariantsDetectsViolations(t *testing.T) {
	rel := &v1.Release{Id: "r", Spec: &v1.ReleaseSpec{App: "api"}, State: rsRunning}
	cases := []struct {
		name  string
		build func(s *plain)
		want  string
	}{
		{"two active", func(s *plain) {
			s.releases["r"] = rel
			s.apps["api"] = &v1.App{Name: "api", ActiveReleaseId: "r"}
			s.assignments[hostApp{"h", "api"}] = []*v1.Assignment{
				{Host: "h", App: "api", Generation: 1, ReleaseId: "r", State: asBaking},
				{Host: "h", App: "api", Generation: 2, ReleaseId: "r", State: asAssigned},
			}
		}, "two active assignments"},
		{"generation order", func(s *plain) {
			s.releases["r"] = rel
			s.apps["api"] = &v1.App{Name: "api", ActiveReleaseId: "r"}
			s.assignments[hostApp{"h", "api"}] = []*v1.Assignment{
				{Host: "h", App: "api", Generation: 3, ReleaseId: "r", State: asFailed},
				{Host: "h", App: "api", Generation: 3, ReleaseId: "r", State: asAssigned},
			}
		}, "generation 3 follows 3"},
		{"terminal active release", func(s *plain) {
			s.releases["r"] = &v1.Release{Id: "r", Spec: &v1.ReleaseSpec{App: "api"}, State: rsSucceed}
			s.apps["api"] = &v1.App{Name: "api", ActiveReleaseId: "r"}
		}, `active release "r" is succeeded`},
		{"orphan live release", func(s *plain) {
			s.releases["r"] = rel
		}, `release "r" is running but app "api"'s active release is ""`},
		{"event seq", func(s *plain) {
			s.events = []*v1.Event{{Seq: 2, Kind: "a"}, {Seq: 2, Kind: "b"}}
		}, "event seq 2 follows 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newPlain()
			tc.build(s)
			err := checkInvariants(s)
			if err == nil || !containsStr(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if err := CheckInvariants(richState(t).State()); err != nil {
		t.Fatalf("rich state: %v", err)
	}
}

// TestConcurrentReadersAndWatchers runs readers and a Changed() watcher
// alongside Apply; run with -race. The watcher waits for the last index
// without polling.
func TestConcurrentReadersAndWatchers(t *testing.T) {
	f := New(testutil.Logger(t))
	const n = 200
	done := make(chan struct{})
	seen := make(chan uint64, 1)
	go func() {
		for {
			ch := f.State().Changed()
			if idx := f.State().AppliedIndex(); idx >= n {
				seen <- idx
				return
			}
			<-ch
		}
	}()
	go func() {
		defer close(done)
		for f.State().AppliedIndex() < n {
			_ = f.State().Hosts()
			_ = f.State().Events("", 0, 10)
			_ = f.State().Dump()
		}
	}()
	for i := range n {
		mustApply(t, f, hostsCmd("eu-1", fmt.Sprintf("h%d", i%7)))
	}
	if idx := <-seen; idx != n {
		t.Errorf("watcher saw index %d, want %d", idx, n)
	}
	<-done
}
