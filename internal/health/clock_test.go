package health

import (
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeClockTimers(t *testing.T) {
	c := NewFakeClock(epoch)
	a := c.NewTimer(2 * time.Second)
	b := c.NewTimer(time.Second)
	stopped := c.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports pending once")
	}
	if c.Waiters() != 2 {
		t.Fatalf("waiters %d", c.Waiters())
	}

	c.Advance(999 * time.Millisecond)
	select {
	case <-b.C():
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Millisecond)
	if got := <-b.C(); !got.Equal(epoch.Add(time.Second)) {
		t.Fatalf("fired at %s", got)
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	case <-stopped.C():
		t.Fatal("stopped timer fired")
	default:
	}

	// Reset re-arms relative to now.
	b.Reset(5 * time.Second)
	c.Set(epoch.Add(3 * time.Second))
	<-a.C()
	if c.Waiters() != 1 {
		t.Fatalf("waiters %d after a fired", c.Waiters())
	}
	c.Set(epoch) // never backwards
	if !c.Now().Equal(epoch.Add(3 * time.Second)) {
		t.Fatal("Set moved time backwards")
	}
	c.Advance(3 * time.Second)
	<-b.C()

	// Zero duration fires at once.
	<-c.After(0)
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := NewFakeClock(epoch)
	done := make(chan error, 1)
	go func() { done <- c.BlockUntil(testContext(t), 2) }()
	c.NewTimer(time.Second)
	c.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestJitterBounds(t *testing.T) {
	for range 1000 {
		j := jitter(time.Second, 0.1)
		if j < 0 || j >= 100*time.Millisecond {
			t.Fatalf("jitter %s out of [0, 100ms)", j)
		}
	}
	if jitter(time.Nanosecond, 0.1) != 0 {
		t.Fatal("tiny interval")
	}
}
