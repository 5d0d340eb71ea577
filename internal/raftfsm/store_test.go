package raftfsm

import (
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// fired reports, without blocking, whether a watch has fired.
func fired(w Watch) bool {
	for ch := range w.ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// A snapshot taken before later applies persists the state as it was when
// it was taken, although Persist runs after them.
func TestSnapshotIsPointInTime(t *testing.T) {
	f := New(nil)
	mustApply(t, f, with(base(), one(assignCmd("h1", "api", "api-1", 1)))...)
	before := f.State().Dump()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f,
		updateCmd("h1", "api", 1, asStaging),
		hostsCmd("eu-2", "h3"),
		relStateCmd("api-1", rsPaused),
	)
	if f.State().Dump() == before {
		t.Fatal("the applies after the snapshot changed nothing")
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	g := New(nil)
	if err := g.Restore(nopCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := g.State().Dump(); got != before {
		t.Fatalf("snapshot persisted a later state:\n%s\nwant\n%s", got, before)
	}
}

// Nothing a query returns aliases the state: changing it changes neither
// the state nor a snapshot.
func TestReadsNeverAliasState(t *testing.T) {
	f := New(nil)
	mustApply(t, f, with(base(), one(assignCmd("h1", "api", "api-1", 1)))...)
	s := f.State()
	want := s.Dump()
	snap, _ := f.Snapshot()

	s.Release("api-1").Phases[0].Hosts[0] = "evil"
	s.Releases("api")[0].State = rsFailed
	s.ActiveReleases()[0].Reason = "evil"
	s.Hosts()[0].Labels = map[string]string{"evil": "yes"}
	s.Host("h1").Cell = "evil"
	s.App("api").ActiveReleaseId = "evil"
	s.Assignment("h1", "api").State = asFailed
	s.HostAssignments("h1")[0].Generation = 99
	s.ReleaseAssignments("api-1")[0].ReleaseId = "evil"
	s.Events("", 0, 0)[0].Kind = "evil"
	s.Cells()[0].Risk = 99

	if got := s.Dump(); got != want {
		t.Fatalf("a caller's change reached the state:\n%s\nwant\n%s", got, want)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := New(nil)
	if err := g.Restore(nopCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := g.State().Dump(); got != want {
		t.Fatalf("a caller's change reached the snapshot:\n%s", got)
	}
}

// A change to release A (its record, its assignments, its events) does not
// wake a watcher of release B; a change to B, or a freeze, does.
func TestWatchReleaseWakesOnlyForItsRelease(t *testing.T) {
	f := New(nil)
	mustApply(t, f, with(base(), one(
		submitCmd("web-1", "web", 1), relStateCmd("web-1", rsRunning),
		assignCmd("h1", "api", "api-1", 1), assignCmd("h2", "web", "web-1", 1),
	))...)
	s := f.State()

	wb := s.WatchRelease("web-1")
	for _, c := range []cmd{
		updateCmd("h1", "api", 1, asStaging),
		phaseCmd("api-1", 0, psDeploying),
		{AppendEvents, &v1.AppendEventsCommand{TimeUnixNano: t0, Events: []*v1.Event{{ReleaseId: "api-1", Kind: "gate.passed"}}}},
		hostsCmd("eu-1", "h1"), // a heartbeat
	} {
		mustApply(t, f, c)
		if fired(wb) {
			t.Fatalf("%v about api-1 woke the watcher of web-1", c.t)
		}
	}

	for _, c := range []cmd{
		updateCmd("h2", "web", 1, asStaging),
		phaseCmd("web-1", 0, psDeploying),
		{AppendEvents, &v1.AppendEventsCommand{TimeUnixNano: t0, Events: []*v1.Event{{ReleaseId: "web-1", Kind: "gate.passed"}}}},
		{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: t0, On: true, Reason: "incident"}},
		{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: t0, Window: &v1.FreezeWindow{Id: "w", FromUnixNano: t0, ToUnixNano: t0 + 1}}},
		relStateCmd("web-1", rsPaused),
	} {
		w := s.WatchRelease("web-1")
		if fired(w) {
			t.Fatal("a fresh watch has fired")
		}
		mustApply(t, f, c)
		if !fired(w) {
			t.Fatalf("%v about web-1 did not wake its watcher", c.t)
		}
	}

	// A restore replaces the whole state: every watch fires.
	w := s.WatchRelease("web-1")
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(nopCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !fired(w) {
		t.Fatal("restore did not wake the watcher")
	}
}

// A rejected command changes nothing, even when its handler stored objects
// before it found the problem: the entry's transaction is aborted.
func TestRejectedCommandLeavesNoTrace(t *testing.T) {
	f := New(nil)
	mustApply(t, f, base()...)
	want := dumpNoIndex(f.State())
	// The second host is fine, the third has no id: the first is stored
	// by the handler's loop only if validation and mutation interleave.
	res := apply(t, f, cmd{UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: t0, Hosts: []*v1.Host{{Id: "h9"}, {Id: ""}}}})
	asRejected(t, res)
	if got := dumpNoIndex(f.State()); got != want {
		t.Fatalf("rejected command changed state:\n%s", got)
	}
}
