package backoff

import (
	"testing"
	"time"
)

func TestDelaysGrowAndStayUnderTheCap(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	windows := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, w := range windows {
		d := b.Next()
		if d <= 0 || d > w*time.Millisecond+time.Millisecond {
			t.Fatalf("delay %d = %s, want in (0, %s]", i, d, w*time.Millisecond+time.Millisecond)
		}
	}
	b.Reset()
	if d := b.Next(); d > 11*time.Millisecond {
		t.Fatalf("after Reset the window starts over, got %s", d)
	}
}
