package fleet

import (
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec"
)

func TestReleaseSpecParses(t *testing.T) {
	if _, err := spec.ParseRelease("bench.hcl", []byte(ReleaseSpec("bench-1", "bench", "25%", 1))); err != nil {
		t.Fatal(err)
	}
}

func TestNewDist(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := NewDist(ds)
	if d.P50 != 50 || d.P99 != 99 || d.Max != 100 || d.N != 100 {
		t.Fatalf("got %+v", d)
	}
}
