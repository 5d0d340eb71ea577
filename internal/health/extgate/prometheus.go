package extgate

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rollwave/rollwave/internal/health"
)

// Placeholders a prometheus gate's query may use. Values are escaped for
// a double-quoted PromQL string ("…"), the usual place for them:
// job="{{app}}", version="{{version}}", host=~"{{hosts_regex}}".
var Placeholders = []string{"app", "version", "release", "phase", "hosts", "hosts_regex", "cells", "cells_regex"}

var placeholderRE = regexp.MustCompile(`\{\{([a-z_]+)\}\}`)

// ExpandQuery fills q's placeholders from c. hosts and cells are joined
// with ","; *_regex are the names with regexp.QuoteMeta joined with "|"
// inside ^(…)$. Every value is escaped for a double-quoted PromQL string.
func ExpandQuery(q string, c Context) string {
	alt := func(names []string) string {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = regexp.QuoteMeta(n)
		}
		return "^(" + strings.Join(quoted, "|") + ")$"
	}
	return placeholderRE.ReplaceAllStringFunc(q, func(m string) string {
		var v string
		switch m[2 : len(m)-2] {
		case "app":
			v = c.App
		case "version":
			v = c.Version
		case "release":
			v = c.Release
		case "phase":
			v = strconv.Itoa(int(c.Phase))
		case "hosts":
			v = strings.Join(c.Hosts, ",")
		case "hosts_regex":
			v = alt(c.Hosts)
		case "cells":
			v = strings.Join(c.Cells, ",")
		case "cells_regex":
			v = alt(c.Cells)
		default:
			return m
		}
		return promString(v)
	})
}

// promString escapes v for the inside of a double-quoted PromQL string,
// whose escapes are Go's: strconv.Quote without the outer quotes.
func promString(v string) string {
	q := strconv.Quote(v)
	return q[1 : len(q)-1]
}

func (g *Gate) readPrometheus(ctx context.Context, c Context, res *Result) error {
	query := ExpandQuery(g.spec.GetQuery(), c)
	res.Evidence["address"] = g.spec.GetAddress()
	res.Evidence["query"] = query
	if g.spec.Max != nil {
		res.Evidence["max"] = fmtFloat(g.spec.GetMax())
	}
	if g.spec.Min != nil {
		res.Evidence["min"] = fmtFloat(g.spec.GetMin())
	}
	client, err := api.NewClient(api.Config{Address: g.spec.GetAddress(), Client: g.client})
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", g.spec.GetAddress(), err)
	}
	val, warnings, _, err := promv1.NewAPI(client).Query(ctx, query, time.Now(), promv1.WithTimeout(g.timeout))
	if err != nil {
		return fmt.Errorf("query %s: %w", g.spec.GetAddress(), err)
	}
	if len(warnings) > 0 {
		res.Evidence["warnings"] = strings.Join(warnings, "; ")
	}
	var values []float64
	var series []string
	switch v := val.(type) {
	case *model.Scalar:
		values = append(values, float64(v.Value))
		series = append(series, "scalar")
	case model.Vector:
		for _, s := range v {
			values = append(values, float64(s.Value))
			series = append(series, s.Metric.String())
		}
	default:
		return fmt.Errorf("query returned a %s; a gate needs an instant vector or a scalar: %w", val.Type(), errInconclusive)
	}
	res.Evidence["series"] = strconv.Itoa(len(values))
	if len(values) == 0 {
		return fmt.Errorf("query returned no data: %w", errInconclusive)
	}
	g.judge(values, series, res)
	return nil
}

// judge holds every series against the thresholds; the series furthest
// past a limit decides (or, when all pass, the one closest to one) and is
// reported. A NaN or infinite series makes the reading inconclusive.
func (g *Gate) judge(values []float64, series []string, res *Result) {
	best, bestAt := math.Inf(-1), 0
	limit, op := math.NaN(), ""
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			res.Verdict, res.Value = health.Inconclusive, v
			res.Evidence["value"], res.Evidence["worst_series"] = fmtFloat(v), series[i]
			res.Detail = fmt.Sprintf("%s inconclusive: series %s is %s", g.name, series[i], fmtFloat(v))
			return
		}
		// excess > 0 is past a limit; the largest excess is the worst.
		if g.spec.Max != nil {
			if e := v - g.spec.GetMax(); e > best {
				best, bestAt, limit, op = e, i, g.spec.GetMax(), ">"
			}
		}
		if g.spec.Min != nil {
			if e := g.spec.GetMin() - v; e > best {
				best, bestAt, limit, op = e, i, g.spec.GetMin(), "<"
			}
		}
	}
	res.Value, res.Limit = values[bestAt], limit
	res.Evidence["value"], res.Evidence["worst_series"] = fmtFloat(res.Value), series[bestAt]
	if best > 0 {
		res.Verdict = health.Fail
		res.Detail = fmt.Sprintf("%s %s %s %s", g.name, fmtFloat(res.Value), op, fmtFloat(limit))
		if series[bestAt] != "{}" { // an aggregate has no labels to show
			res.Detail += " (" + series[bestAt] + ")"
		}
		return
	}
	res.Verdict = health.Pass
	if op == ">" {
		op = "<="
	} else {
		op = ">="
	}
	res.Detail = fmt.Sprintf("%s %s %s %s (%d series)", g.name, fmtFloat(res.Value), op, fmtFloat(limit), len(values))
}

func fmtFloat(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
