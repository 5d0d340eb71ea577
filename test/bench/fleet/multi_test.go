package fleet

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Every hosted app is in every heartbeat, as a real agent's; no apps is
// the single "bench" app the simulator always had.
func TestHeartbeatBodyCarriesEveryApp(t *testing.T) {
	b := newHBBody(MultiApps(3))
	if len(b.slots) != 3 || len(b.samples) != 6 || b.slots[2].GetApp() != "app-02" {
		t.Fatalf("3 apps: %d slots, %d sample series, last slot %q", len(b.slots), len(b.samples), b.slots[len(b.slots)-1].GetApp())
	}
	if one := newHBBody(nil); len(one.slots) != 1 || one.slots[0].GetApp() != "bench" {
		t.Fatalf("no apps: %v", one.slots)
	}
	if progressQueue(20) < 5*20 {
		t.Errorf("queue of %d for 20 apps cannot hold one swap of each", progressQueue(20))
	}
}

// A run that ends before the barrier (a failed cluster) counts, so the
// other does not wait for it until the deadline; arriving twice counts
// once.
func TestBarrierCountsARunThatEndedEarly(t *testing.T) {
	b := newBarrier(2)
	early, waiting := &member{b: b}, &member{b: b}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan bool, 1)
	go func() { got <- waiting.arrive(ctx) }()
	waiting.done() // again: still one
	select {
	case <-b.all:
		t.Fatal("one run counted twice")
	default:
	}
	early.done()
	if !<-got {
		t.Fatal("the waiting run timed out though the other had ended")
	}
	late := newBarrier(2)
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if (&member{b: late}).arrive(short) {
		t.Fatal("arrived alone and reported aligned")
	}
}

func TestPrefixedWriter(t *testing.T) {
	var buf bytes.Buffer
	w := prefixed(&buf, "eu: ")
	if _, err := w.Write([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "eu: a\neu: b\n" {
		t.Fatalf("got %q", got)
	}
	if prefixed(nil, "x") != nil {
		t.Fatal("a nil writer must stay nil (Options.Log: no log)")
	}
}
