package health

import (
	"fmt"
	"math"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Reading is the outcome of one gate, kept as evidence in audit events.
type Reading struct {
	// Gate names what was measured, e.g. "max_cpu_percent".
	Gate   string
	Value  float64
	Limit  float64
	Passed bool
	// Detail is a one-line human explanation, e.g. "cpu_percent 93.2 > 90".
	Detail string
}

// EvalThreshold passes when value <= limit. A NaN value fails (a metric
// that could not be computed is not evidence of health). Whether a zero
// limit means "gate off" is the caller's decision: this function is pure
// and treats every limit literally.
func EvalThreshold(name string, value, limit float64) Reading {
	r := Reading{Gate: name, Value: value, Limit: limit}
	switch {
	case math.IsNaN(value):
		r.Detail = fmt.Sprintf("%s has no value (limit %.4g)", name, limit)
	case value <= limit:
		r.Passed = true
		r.Detail = fmt.Sprintf("%s %.4g <= %.4g", name, value, limit)
	default:
		r.Detail = fmt.Sprintf("%s %.4g > %.4g", name, value, limit)
	}
	return r
}

// Quantity is a count or a percentage, as in `max_failed_hosts = "5%"`.
type Quantity struct {
	Value   float64
	Percent bool
}

// QuantityFromProto converts the protocol form; nil is a zero count.
func QuantityFromProto(q *rollwavev1.Quantity) Quantity {
	return Quantity{Value: q.GetValue(), Percent: q.GetPercent()}
}

// String renders q as the spec writes it: "5%" or "2".
func (q Quantity) String() string {
	if q.Percent {
		return fmt.Sprintf("%g%%", q.Value)
	}
	return fmt.Sprintf("%g", q.Value)
}

// Allowed returns how many of total q permits. A percentage is rounded
// down — 5% of 10 hosts allows 0 failures, so on small phases any failure
// fails the phase, the cautious choice (Kubernetes rounds maxUnavailable
// down the same way). A count is rounded down too. Negative or NaN values
// allow nothing. A tiny epsilon keeps floating-point error (10% of 30 =
// 2.9999…) from costing a host.
func (q Quantity) Allowed(total int) int {
	v := q.Value
	if math.IsNaN(v) || v <= 0 || total < 0 {
		return 0
	}
	if q.Percent {
		v = float64(total) * v / 100
	}
	return int(math.Floor(v + 1e-9))
}

// BudgetExceeded reports whether failed exceeds what q allows out of total,
// and the allowance. failed == allowed is within budget.
func BudgetExceeded(failed, total int, q Quantity) (exceeded bool, allowed int) {
	allowed = q.Allowed(total)
	return failed > allowed, allowed
}

// EvalBudget is BudgetExceeded as a Reading for audit evidence.
func EvalBudget(name string, failed, total int, q Quantity) Reading {
	exceeded, allowed := BudgetExceeded(failed, total, q)
	r := Reading{Gate: name, Value: float64(failed), Limit: float64(allowed), Passed: !exceeded}
	op := "<="
	if exceeded {
		op = ">"
	}
	r.Detail = fmt.Sprintf("%s: %d of %d %s allowed %d (%s)", name, failed, total, op, allowed, q)
	return r
}
