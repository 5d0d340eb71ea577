package raftfsm

import (
	"context"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func cursorCmd(at int64, cs ...*v1.NotifyCursor) cmd {
	return cmd{SetNotifyCursors | IgnoreUnknownTypeFlag, &v1.SetNotifyCursorsCommand{TimeUnixNano: at, Cursors: cs}}
}

func TestSetNotifyCursors(t *testing.T) {
	f := New(testutil.Logger(t))
	mustApply(t, f, base()...)
	last := f.State().LastEvent().GetSeq()
	if last < 2 {
		t.Fatalf("base state has %d events; the test needs some", last)
	}
	mustApply(t, f, cursorCmd(t0+1, &v1.NotifyCursor{Target: "a", DeliveredSeq: 1}, &v1.NotifyCursor{Target: "b", DeliveredSeq: last}))
	if c := f.State().NotifyCursor("a"); c.GetDeliveredSeq() != 1 || c.GetCreatedUnixNano() != t0+1 {
		t.Fatalf("cursor a = %v", c)
	}

	// Rejected as a whole, nothing changes.
	before := dumpNoIndex(f.State())
	for name, c := range map[string]cmd{
		"no cursors":      cursorCmd(t0 + 2),
		"no target":       cursorCmd(t0+2, &v1.NotifyCursor{DeliveredSeq: 1}),
		"twice":           cursorCmd(t0+2, &v1.NotifyCursor{Target: "a", DeliveredSeq: 2}, &v1.NotifyCursor{Target: "a", DeliveredSeq: 2}),
		"past the newest": cursorCmd(t0+2, &v1.NotifyCursor{Target: "a", DeliveredSeq: 2}, &v1.NotifyCursor{Target: "c", DeliveredSeq: last + 1}),
	} {
		asRejected(t, apply(t, f, c))
		if got := dumpNoIndex(f.State()); got != before {
			t.Fatalf("%s: rejected command changed the state:\n%s", name, got)
		}
	}

	// A cursor below the stored one is skipped; the others in the entry move.
	mustApply(t, f, cursorCmd(t0+3, &v1.NotifyCursor{Target: "a", DeliveredSeq: 2, LostEvents: 4, LastLoss: "x"}))
	mustApply(t, f, cursorCmd(t0+4, &v1.NotifyCursor{Target: "a", DeliveredSeq: 1}, &v1.NotifyCursor{Target: "b", DeliveredSeq: last}))
	a := f.State().NotifyCursor("a")
	if a.GetDeliveredSeq() != 2 || a.GetUpdatedUnixNano() != t0+3 || a.GetCreatedUnixNano() != t0+1 || a.GetLostEvents() != 4 {
		t.Fatalf("cursor a after a stale write = %v", a)
	}
	if b := f.State().NotifyCursor("b"); b.GetUpdatedUnixNano() != t0+4 {
		t.Fatalf("cursor b = %v", b)
	}
	// Losses never go back.
	mustApply(t, f, cursorCmd(t0+5, &v1.NotifyCursor{Target: "a", DeliveredSeq: 2}))
	if a := f.State().NotifyCursor("a"); a.GetLostEvents() != 4 || a.GetLastLoss() != "x" {
		t.Fatalf("cursor a lost its losses: %v", a)
	}
	// No audit event for a cursor write.
	if got := f.State().LastEvent().GetSeq(); got != last {
		t.Fatalf("cursor writes added events: last seq %d, was %d", got, last)
	}

	// Cursors survive a snapshot.
	restored := New(testutil.Logger(t))
	if err := restored.Restore(nopCloser(persist(t, f))); err != nil {
		t.Fatal(err)
	}
	if !restored.State().Equal(f.State()) || len(restored.State().NotifyCursors()) != 2 {
		t.Fatalf("restored:\n%s\nwant:\n%s", restored.State().Dump(), f.State().Dump())
	}
}

func TestWatchEventsFiresOnNewEvent(t *testing.T) {
	f := New(testutil.Logger(t))
	mustApply(t, f, base()...)
	w, last := f.State().WatchEvents()
	if last != f.State().LastEvent().GetSeq() {
		t.Fatalf("watch seq %d, last event %d", last, f.State().LastEvent().GetSeq())
	}
	mustApply(t, f, cmd{AppendEvents, &v1.AppendEventsCommand{TimeUnixNano: t0, Events: []*v1.Event{{Kind: "x.y"}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !w.Wait(ctx) {
		t.Fatal("watch did not fire on a new event")
	}
}
