package health

import (
	"math"
	"slices"
	"testing"
	"time"
)

func at(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }

func TestWindowBounded(t *testing.T) {
	w := NewWindow(3)
	if w.Len() != 0 || len(w.Values()) != 0 || w.Cap() != 3 {
		t.Fatal("new window not empty")
	}
	for i := range 5 {
		w.Add(at(i), float64(i))
		if w.Len() > 3 {
			t.Fatalf("window grew to %d", w.Len())
		}
	}
	if got := w.Values(); !slices.Equal(got, []float64{2, 3, 4}) {
		t.Fatalf("values %v", got)
	}
	if w.Len() != 3 {
		t.Fatalf("len %d", w.Len())
	}
	if NewWindow(0).Cap() != 1 {
		t.Fatal("capacity below 1")
	}
}

func TestWindowSince(t *testing.T) {
	w := NewWindow(4)
	for i := range 6 {
		w.Add(at(i), float64(i*10))
	}
	tests := []struct {
		since time.Time
		want  []float64
	}{
		{at(0), []float64{20, 30, 40, 50}}, // older than anything held
		{at(3), []float64{30, 40, 50}},     // inclusive
		{at(5), []float64{50}},
		{at(6), []float64{}},
	}
	for _, tc := range tests {
		if got := w.Since(tc.since); !slices.Equal(got, tc.want) {
			t.Errorf("Since(%s) = %v, want %v", tc.since.Sub(epoch), got, tc.want)
		}
	}
}

func TestWindowDrain(t *testing.T) {
	w := NewWindow(4)
	if got := w.Drain(); len(got) != 0 {
		t.Fatalf("empty drain %v", got)
	}
	w.Add(at(0), 1)
	w.Add(at(1), 2)
	if got := w.Drain(); !slices.Equal(got, []float64{1, 2}) {
		t.Fatalf("first drain %v", got)
	}
	// Nothing new: nothing drained, but the samples stay in the window.
	if got := w.Drain(); len(got) != 0 || w.Len() != 2 {
		t.Fatalf("second drain %v, len %d", got, w.Len())
	}
	w.Add(at(2), 3)
	if got := w.Drain(); !slices.Equal(got, []float64{3}) {
		t.Fatalf("third drain %v", got)
	}
	// More than capacity since the last drain: the newest capacity samples,
	// and Undrained tells how many there were.
	for i := range 6 {
		w.Add(at(3+i), float64(10+i))
	}
	if w.Undrained() != 6 {
		t.Fatalf("undrained %d", w.Undrained())
	}
	if got := w.Drain(); !slices.Equal(got, []float64{12, 13, 14, 15}) {
		t.Fatalf("overflow drain %v", got)
	}
	if w.Undrained() != 0 {
		t.Fatal("undrained after drain")
	}
}

func TestSummarize(t *testing.T) {
	in := []float64{4, 1, 3, 2, math.NaN()}
	s := Summarize(in)
	want := Summary{N: 4, Mean: 2.5, P50: 2.5, P95: 3.85, Max: 4}
	if s.N != want.N || s.Mean != want.Mean || s.P50 != want.P50 || math.Abs(s.P95-want.P95) > 1e-12 || s.Max != want.Max {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 4 {
		t.Fatal("input modified")
	}
	if Summarize(nil) != (Summary{}) {
		t.Fatal("empty summary")
	}
	if Median([]float64{5, 1, 3}) != 3 || Percentile([]float64{1, 2, 3}, 0) != 1 || Percentile([]float64{1, 2, 3}, 100) != 3 {
		t.Fatal("percentile ends")
	}
	if Mean([]float64{1, 2, 6}) != 3 || Max([]float64{1, 7, 3}) != 7 || Max(nil) != 0 {
		t.Fatal("mean/max")
	}
}
