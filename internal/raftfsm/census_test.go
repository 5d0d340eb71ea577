package raftfsm

import (
	"maps"
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// censusByCopies is what the metrics collector computed before Census:
// every host and release copied, each host's assignments read in a read
// of their own.
func censusByCopies(s *State) Census {
	c := Census{Releases: map[v1.ReleaseState]int{}, Assignments: map[AppAssignmentState]int{}}
	hosts := s.Hosts()
	c.Hosts = len(hosts)
	for _, h := range hosts {
		for _, a := range s.HostAssignments(h.GetId()) {
			c.Assignments[AppAssignmentState{a.GetApp(), a.GetState()}]++
		}
	}
	for _, r := range s.Releases("") {
		c.Releases[r.GetState()]++
		if !ReleaseTerminal(r.GetState()) {
			c.Live = append(c.Live, r)
		}
	}
	return c
}

// Census counts what the copying reads counted: registered hosts only
// (a deleted host keeps its current assignments in the state, and they
// are not counted), every release by state, copies of the live ones.
func TestCensusMatchesCopyingReads(t *testing.T) {
	f := richState(t)
	mustApply(t, f,
		hostsCmd("eu-1", "h4", "h5"),
		assignCmd("h4", "api", "api-1", 1), updateCmd("h4", "api", 1, asFailed),
		submitCmd("db-1", "db", 1), relStateCmd("db-1", rsRunning),
		assignCmd("h5", "db", "db-1", 1), assignCmd("h1", "db", "db-1", 1), updateCmd("h1", "db", 1, asStaging),
		cmd{DeleteHost, &v1.DeleteHostCommand{Id: "h4"}},
	)
	s := f.State()
	got, want := s.Census(), censusByCopies(s)
	if got.Hosts != want.Hosts || got.Hosts != 4 {
		t.Errorf("hosts: census %d, copies %d, want 4", got.Hosts, want.Hosts)
	}
	if !maps.Equal(got.Releases, want.Releases) {
		t.Errorf("releases by state: census %v, copies %v", got.Releases, want.Releases)
	}
	if !maps.Equal(got.Assignments, want.Assignments) {
		t.Errorf("assignments: census %v, copies %v", got.Assignments, want.Assignments)
	}
	if n := got.Assignments[AppAssignmentState{"api", asFailed}]; n != 0 {
		t.Errorf("the deleted host's failed api assignment was counted (%d)", n)
	}
	if n := got.Assignments[AppAssignmentState{"db", asAssigned}]; n != 1 {
		t.Errorf("db assigned: %d, want 1 (h5; h1 is staging)", n)
	}
	if len(got.Live) != 2 || got.Live[0].GetId() != "api-1" || got.Live[1].GetId() != "db-1" || len(want.Live) != 2 {
		t.Fatalf("live releases: census %v, copies %v; want api-1, db-1", got.Live, want.Live)
	}
	before := s.Dump()
	got.Live[0].State = rsFailed
	if s.Dump() != before {
		t.Error("changing a live release from the census changed the state")
	}
}

func TestCensusEmpty(t *testing.T) {
	c := New(nil).State().Census()
	if c.Hosts != 0 || len(c.Releases) != 0 || len(c.Assignments) != 0 || len(c.Live) != 0 {
		t.Errorf("empty state: %+v", c)
	}
}

// The census of a large fleet allocates no more than that of a small
// one: nothing is copied per host or per assignment.
func TestCensusAllocationsDoNotGrowWithHosts(t *testing.T) {
	allocs := func(n int) float64 {
		f := New(nil)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "host-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		}
		mustApply(t, f, hostsCmd("eu-1", ids...), submitCmd("api-1", "api", 1), relStateCmd("api-1", rsRunning))
		for _, h := range ids {
			mustApply(t, f, assignCmd(h, "api", "api-1", 1))
		}
		s := f.State()
		return testing.AllocsPerRun(20, func() { _ = s.Census() })
	}
	small, large := allocs(10), allocs(2000)
	if large > small+10 {
		t.Errorf("census allocations: %.0f at 10 hosts, %.0f at 2,000", small, large)
	}
	t.Logf("census allocations: %.0f at 10 hosts, %.0f at 2,000", small, large)
}
