package raftfsm

import (
	"errors"
	"fmt"
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// history builds app "api" with n finished releases r0..r(n-1) (created in
// order, each rolled to h1 and h2 in a new generation) and one running
// release "live" that h2 has not reached; then h1 moves on to "live".
// Returns the commands, to replay on a follower too.
func history(n int) []cmd {
	cmds := []cmd{hostsCmd("eu-1", "h1", "h2"), cellCmd("eu-1", 1, "low", 100)}
	gen := uint64(0)
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		at := t0 + int64(i)*1_000_000
		gen++
		cmds = append(cmds,
			cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: at, Actor: "alice", Release: releaseMsg(id, "api", 1)}},
			relStateCmd(id, rsRunning),
			cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: at, Assignments: []*v1.Assignment{
				{Host: "h1", App: "api", Generation: gen, ReleaseId: id}, {Host: "h2", App: "api", Generation: gen, ReleaseId: id}}}},
			cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: at, Updates: []*v1.AssignmentUpdate{
				{Host: "h1", App: "api", Generation: gen, State: asFailed}, {Host: "h2", App: "api", Generation: gen, State: asFailed}}}},
			cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: at + 1, ReleaseId: id, State: v1.ReleaseState_RELEASE_STATE_ABORTED, Actor: "rollout", CurrentPhase: -1}},
		)
	}
	at := t0 + int64(n)*1_000_000
	cmds = append(cmds,
		cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: at, Actor: "alice", Release: releaseMsg("live", "api", 1)}},
		relStateCmd("live", rsRunning),
		cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: at, Assignments: []*v1.Assignment{
			{Host: "h1", App: "api", Generation: gen + 1, ReleaseId: "live"}}}},
	)
	return cmds
}

func pruneCmd(keep int32, before int64) cmd {
	return cmd{Prune, &v1.PruneCommand{TimeUnixNano: t0 + 1_000_000_000, Actor: "gc", KeepReleasesPerApp: keep, EventsBeforeUnixNano: before}}
}

func TestPruneKeepsNewestFinishedReleasesPerApp(t *testing.T) {
	f := New(nil)
	mustApply(t, f, history(6)...)
	mustApply(t, f, submitCmd("web-1", "web", 1), relStateCmd("web-1", v1.ReleaseState_RELEASE_STATE_ABORTED))
	s := f.State()
	if !s.PruneNeeded(2, 0) {
		t.Fatal("PruneNeeded(2, 0) = false with 6 finished releases")
	}
	mustApply(t, f, pruneCmd(2, 0))

	// Newest two finished (r4, r5) kept; r5 also because h2 still runs it;
	// r0..r3 dropped; the active release stays; web has only one.
	var ids []string
	for _, r := range s.Releases("") {
		ids = append(ids, r.GetId())
	}
	if fmt.Sprint(ids) != "[web-1 r4 r5 live]" {
		t.Fatalf("releases after prune = %v, want [web-1 r4 r5 live] (by creation)", ids)
	}
	for _, id := range []string{"r0", "r3"} {
		if s.Release(id) != nil {
			t.Errorf("release %s still answers", id)
		}
		if a := s.ReleaseAssignments(id); len(a) != 0 {
			t.Errorf("release %s: %d assignments left", id, len(a))
		}
		if e := s.Events(id, 0, 0); len(e) != 0 {
			t.Errorf("release %s: %d events left", id, len(e))
		}
	}
	// Current assignments are untouched: h1 on live (gen 7), h2 on r5 (gen 6).
	if a := s.Assignment("h1", "api"); a.GetReleaseId() != "live" || a.GetGeneration() != 7 {
		t.Errorf("h1 = %v", a)
	}
	if a := s.Assignment("h2", "api"); a.GetReleaseId() != "r5" || a.GetGeneration() != 6 {
		t.Errorf("h2 = %v", a)
	}
	ev := s.Events("", 0, 0)
	last := ev[len(ev)-1]
	if last.GetKind() != "state.pruned" || last.GetEvidence()["releases"] != "4" || last.GetEvidence()["release_ids"] != "r0,r1,r2,r3" {
		t.Errorf("prune event = %v", last)
	}
	if err := CheckInvariants(s); err != nil {
		t.Fatal(err)
	}
	if s.PruneNeeded(2, 0) {
		t.Error("PruneNeeded still true right after the prune")
	}
	// New generations on a host keep increasing after its history went.
	if res := apply(t, f, assignCmd("h2", "api", "live", 6)); res == nil {
		t.Error("generation 6 accepted again on h2 after the prune")
	}
}

// A release some host still runs is kept whatever its age; an active one
// is never counted or dropped.
func TestPruneNeverDropsActiveOrRunningReleases(t *testing.T) {
	f := New(nil)
	mustApply(t, f, history(3)...)
	mustApply(t, f, pruneCmd(1, 0))
	s := f.State()
	if s.Release("live") == nil || s.Release("live").GetState() != rsRunning {
		t.Fatal("active release dropped")
	}
	// keep 1: r2 kept as newest; r0, r1 dropped (no host runs them).
	for id, want := range map[string]bool{"r0": false, "r1": false, "r2": true} {
		if got := s.Release(id) != nil; got != want {
			t.Errorf("release %s kept = %v, want %v", id, got, want)
		}
	}
	// Now h2 stays on r2 while r2 is beyond the newest kept: finish live on
	// h1 only and prune with keep 1 again. live is newest; r2 is still h2's.
	mustApply(t, f, updateCmd("h1", "api", 4, asFailed),
		cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 9_000_000, ReleaseId: "live", State: v1.ReleaseState_RELEASE_STATE_ABORTED, CurrentPhase: -1}},
		pruneCmd(1, 0))
	if s.Release("r2") == nil {
		t.Fatal("release r2 dropped although h2 still runs it")
	}
	if err := CheckInvariants(s); err != nil {
		t.Fatal(err)
	}
}

func TestPruneDropsEventsByAge(t *testing.T) {
	f := New(nil)
	mustApply(t, f, history(3)...)
	s := f.State()
	cutoff := t0 + 2_000_000 // r0 and r1's events are older
	var old int
	for _, e := range s.Events("", 0, 0) {
		if e.GetTimeUnixNano() < cutoff {
			old++
		}
	}
	if old == 0 {
		t.Fatal("test setup: no event before the cutoff")
	}
	lastSeq := s.Events("", 0, 0)[len(s.Events("", 0, 0))-1].GetSeq()
	mustApply(t, f, pruneCmd(0, cutoff))
	ev := s.Events("", 0, 0)
	for _, e := range ev {
		if e.GetTimeUnixNano() < cutoff {
			t.Errorf("event %d (%s) older than the cutoff kept", e.GetSeq(), e.GetKind())
		}
	}
	if last := ev[len(ev)-1]; last.GetKind() != "state.pruned" || last.GetSeq() != lastSeq+1 || last.GetEvidence()["events"] != fmt.Sprint(old) {
		t.Errorf("prune event = %v (want seq %d, %d events)", last, lastSeq+1, old)
	}
	// keep 0: no release dropped.
	if len(s.Releases("")) != 4 {
		t.Errorf("releases = %d, want 4", len(s.Releases("")))
	}
	// Every event gone (cutoff after all): seqs still carry on.
	mustApply(t, f, cmd{Prune, &v1.PruneCommand{TimeUnixNano: t0 + 2_000_000_000, EventsBeforeUnixNano: t0 + 2_000_000_000}})
	ev = s.Events("", 0, 0)
	if len(ev) != 1 || ev[0].GetSeq() != lastSeq+2 {
		t.Fatalf("events after pruning all = %v, want one prune event with seq %d", ev, lastSeq+2)
	}
}

// A prune entry on a follower yields the same state as on the leader.
func TestPruneIsDeterministicOnFollowers(t *testing.T) {
	cmds := append(history(5), pruneCmd(2, t0+3_000_000))
	a, b := New(nil), New(nil)
	mustApply(t, a, cmds...)
	// The follower got the first half from a snapshot, the rest from the log.
	mustApply(t, b, cmds[:len(cmds)/2]...)
	snap, _ := b.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	c := New(nil)
	if err := c.Restore(nopCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	for i, cm := range cmds[len(cmds)/2:] {
		if _, err := c.ApplyEntry(uint64(len(cmds)/2+i+1), encodeCmd(t, cm)); err != nil {
			t.Fatal(err)
		}
	}
	if !a.State().Equal(c.State()) {
		t.Fatalf("states differ:\n%s\n---\n%s", a.State().Dump(), c.State().Dump())
	}
	if sa, sc := persist(t, a), persist(t, c); string(sa) != string(sc) {
		t.Fatal("equal states wrote different snapshot bytes")
	}
}

func TestPruneRejectsBadValues(t *testing.T) {
	f := New(nil)
	mustApply(t, f, history(2)...)
	want := dumpNoIndex(f.State())
	for _, c := range []*v1.PruneCommand{
		{KeepReleasesPerApp: 1},
		{TimeUnixNano: t0, KeepReleasesPerApp: -1},
		{TimeUnixNano: t0, EventsBeforeUnixNano: -5},
		{TimeUnixNano: t0, EventsBeforeUnixNano: t0 + 1},
	} {
		if rej := asRejected(t, apply(t, f, cmd{Prune, c})); !errors.Is(rej, ErrInvalid) {
			t.Errorf("%v: %v", c, rej)
		}
	}
	if got := dumpNoIndex(f.State()); got != want {
		t.Fatal("a rejected prune changed the state")
	}
}
