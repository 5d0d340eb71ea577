package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// errorRateGate is the gate the bad release must fail on.
const errorRateGate = "max_error_rate"

// gateReading finds the gate.failed event of r's error-rate gate in its
// audit events and prints the reading from its evidence, as the leader
// recorded it in raft. A rollback for any other reason is an error: the
// demo shows the error-rate gate at work.
func (d *demo) gateReading(ctx context.Context, r release) (*rollwavev1.Event, error) {
	var events []*rollwavev1.Event
	if err := d.cliJSON(ctx, &events, "release", "events", r.id(), "-json"); err != nil {
		return nil, err
	}
	var others []string
	for _, e := range events {
		if e.GetKind() != "gate.failed" {
			continue
		}
		ev := e.GetEvidence()
		if ev["gate"] != errorRateGate {
			others = append(others, ev["gate"]+": "+ev["detail"])
			continue
		}
		d.gateEvidence = ev
		d.printReading(e)
		return e, nil
	}
	if len(others) == 0 {
		others = []string{"none"}
	}
	return nil, fmt.Errorf("release %s was rolled back, but not by the %s gate (failed gates: %s); `rollwave release events %s` has the whole story",
		r.id(), errorRateGate, strings.Join(others, "; "), r.id())
}

// printReading shows an error-rate gate.failed event's evidence.
func (d *demo) printReading(e *rollwavev1.Event) {
	ev := e.GetEvidence()
	d.say.note("")
	d.say.note("The error-rate gate caught it at the end of the canary's bake. Its reading, from the")
	d.say.note("evidence of the gate.failed event (`rollwave release events %s` lists it):", e.GetReleaseId())
	d.say.note("  %-12s %s, phase %d, host(s) %s", "gate", ev["gate"], e.GetPhase(), ev["hosts"])
	d.say.note("  %-12s %s", "window", windowOf(ev["window"]))
	d.say.note("  %-12s %s (at least min_requests = %s to judge)", "requests", ev["requests"], ev["min_requests"])
	d.say.note("  %-12s %s (%s of them upstream errors)", "5xx", ev["errors"], ev["upstream_errors"])
	if ev["per_host"] != "" {
		d.say.note("  %-12s %s (5xx/requests)", "per host", ev["per_host"])
	}
	d.say.note("  %-12s %s > max_error_rate %s: the phase failed", "error rate", percent(ev["value"]), percent(ev["limit"]))
}

// windowOf turns the evidence's "from..to" (RFC 3339) into its length and
// clock times; anything else is shown as it is.
func windowOf(w string) string {
	from, to, ok := strings.Cut(w, "..")
	if !ok {
		return w
	}
	f, err1 := time.Parse(time.RFC3339Nano, from)
	t, err2 := time.Parse(time.RFC3339Nano, to)
	if err1 != nil || err2 != nil {
		return w
	}
	return fmt.Sprintf("%s of traffic, %s .. %s", t.Sub(f).Round(10*time.Millisecond),
		f.UTC().Format("15:04:05.000"), t.UTC().Format("15:04:05.000"))
}

// percent shows a fraction ("0.1") as a percentage ("10%").
func percent(frac string) string {
	v, err := strconv.ParseFloat(frac, 64)
	if err != nil {
		return frac
	}
	return strconv.FormatFloat(100*v, 'g', 3, 64) + "%"
}

// backOn says how soon after the gate failed every host served good
// again, and how long the bad release was live, from the demo's traffic
// (same machine and clock as the coordinators' events).
func (d *demo) backOn(gate *rollwavev1.Event, start time.Time, good string) {
	failedAt := time.Unix(0, gate.GetTimeUnixNano())
	firstBad, lastGood := d.badWindow(start)
	switch {
	case lastGood.IsZero():
		d.say.note("Every host is back on %s.", good)
	case lastGood.After(failedAt):
		d.say.note("Every host is back on %s: the last one switched back %s after the gate failed.",
			good, lastGood.Sub(failedAt).Round(time.Millisecond))
	default:
		d.say.note("Every host is back on %s: the last one switched back %s before the gate's event was recorded.",
			good, failedAt.Sub(lastGood).Round(time.Millisecond))
	}
	if !firstBad.IsZero() && lastGood.After(firstBad) {
		d.say.note("The bad version took the canary's traffic for %s; %s after its release started, it was gone.",
			lastGood.Sub(firstBad).Round(100*time.Millisecond), lastGood.Sub(start).Round(100*time.Millisecond))
	}
	d.say.note("(Times from GET / on each traffic port every %s.)", d.traffic.every)
}

// requestsNote sums up the requests the generator sent during a release.
func (d *demo) requestsNote(before map[string]answers) {
	now := d.traffic.counted()
	var total answers
	var failing []string
	for _, h := range d.hosts {
		a := now[h.name].minus(before[h.name])
		total = total.plus(a)
		if a.failed > 0 {
			failing = append(failing, fmt.Sprintf("%s %d of %d", h.name, a.failed, a.sent))
		}
	}
	line := fmt.Sprintf("Requests sent during the release: %d (one per host every %s); ", total.sent, d.traffic.every)
	if total.failed == 0 {
		line += "none answered 5xx"
	} else {
		line += fmt.Sprintf("%d answered 5xx (%s)", total.failed, strings.Join(failing, ", "))
	}
	if total.noAnswer > 0 {
		line += fmt.Sprintf("; %d got no answer (nothing listens on a host before its first release)", total.noAnswer)
	}
	d.say.note("%s.", line)
}
