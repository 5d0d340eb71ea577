package health

import (
	"math"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestEvalThreshold(t *testing.T) {
	tests := []struct {
		value, limit float64
		pass         bool
		detail       string
	}{
		{41, 90, true, "max_cpu_percent 41 <= 90"},
		{90, 90, true, "max_cpu_percent 90 <= 90"}, // at the limit passes
		{93.2, 90, false, "max_cpu_percent 93.2 > 90"},
		{math.NaN(), 90, false, "max_cpu_percent has no value (limit 90)"},
	}
	for _, tc := range tests {
		r := EvalThreshold("max_cpu_percent", tc.value, tc.limit)
		if r.Passed != tc.pass || r.Detail != tc.detail || r.Gate != "max_cpu_percent" || r.Limit != tc.limit {
			t.Errorf("EvalThreshold(%g, %g) = %+v", tc.value, tc.limit, r)
		}
	}
}

func TestBudgetExceeded(t *testing.T) {
	pct := func(v float64) Quantity { return Quantity{Value: v, Percent: true} }
	count := func(v float64) Quantity { return Quantity{Value: v} }
	tests := []struct {
		name          string
		failed, total int
		q             Quantity
		exceeded      bool
		allowed       int
	}{
		{"5% of 100, 5 failed", 5, 100, pct(5), false, 5},
		{"5% of 100, 6 failed", 6, 100, pct(5), true, 5},
		{"5% of 10 rounds down to 0", 1, 10, pct(5), true, 0},
		{"5% of 10, none failed", 0, 10, pct(5), false, 0},
		{"10% of 30 is 3 despite float error", 3, 30, pct(10), false, 3},
		{"33% of 7 floors to 2", 3, 7, pct(33), true, 2},
		{"100% allows all", 7, 7, pct(100), false, 7},
		{"count 2", 2, 50, count(2), false, 2},
		{"count 2, 3 failed", 3, 50, count(2), true, 2},
		{"fractional count floors", 2, 50, count(1.5), true, 1},
		{"zero budget", 1, 50, count(0), true, 0},
		{"negative budget is zero", 0, 50, count(-1), false, 0},
		{"NaN budget is zero", 1, 50, count(math.NaN()), true, 0},
	}
	for _, tc := range tests {
		exceeded, allowed := BudgetExceeded(tc.failed, tc.total, tc.q)
		if exceeded != tc.exceeded || allowed != tc.allowed {
			t.Errorf("%s: got (%v, %d), want (%v, %d)", tc.name, exceeded, allowed, tc.exceeded, tc.allowed)
		}
	}
	r := EvalBudget("max_failed_hosts", 6, 100, pct(5))
	if r.Passed || r.Detail != "max_failed_hosts: 6 of 100 > allowed 5 (5%)" {
		t.Fatalf("%+v", r)
	}
	if q := QuantityFromProto(&rollwavev1.Quantity{Value: 5, Percent: true}); q != pct(5) || q.String() != "5%" {
		t.Fatalf("%+v", q)
	}
	if q := QuantityFromProto(nil); q != (Quantity{}) || q.String() != "0" {
		t.Fatal("nil quantity")
	}
}
