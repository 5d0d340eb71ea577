// Package freeze answers when freeze windows hold: one-off windows (from,
// to) and recurring calendars (a cron expression read in a time zone, each
// occurrence lasting a duration), scoped to apps and cells. It is pure:
// the time is always an argument. The orchestrator (phase starts), the
// coordinator (`rollwave freeze list`) and the agent (swap starts) share it,
// so all three agree on what is frozen.
package freeze

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// MaxDuration is the longest occurrence of a recurring window.
const MaxDuration = 31 * 24 * time.Hour

// gapSamples is how many occurrences Validate compares to find the
// shortest gap between two of them.
const gapSamples = 64

// mergeLimit bounds the occurrences merged into one active stretch.
const mergeLimit = 1000

// parser is the standard 5-field parser (minute, hour, day of month,
// month, day of week) with descriptors (@daily, @weekly, …), robfig/cron's
// ParseStandard without the CRON_TZ= prefix (the zone is its own field).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var fieldNames = [5]string{"minute", "hour", "day of month", "month", "day of week"}

// Recurring reports whether w is a calendar (cron) window.
func Recurring(w *rollwavev1.FreezeWindow) bool { return w.GetCron() != "" }

// Schedule is a parsed recurring window.
type Schedule struct {
	sched cron.Schedule
	loc   *time.Location
	d     time.Duration
}

// ParseCron parses a standard cron expression; an error names the field
// that is wrong ("cron field 5 (day of week) \"FRY\": …").
func ParseCron(expr string) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, errors.New("cron expression is empty")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("cron %q: give the zone as the window's timezone, not a TZ= prefix", expr)
	}
	if strings.HasPrefix(expr, "@every") {
		return nil, fmt.Errorf("cron %q: @every is not tied to the calendar; use a 5-field expression or @hourly/@daily/@weekly/@monthly/@yearly", expr)
	}
	s, err := parser.Parse(expr)
	if err == nil {
		return s, nil
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 || strings.HasPrefix(expr, "@") {
		return nil, fmt.Errorf("cron %q: %v (want 5 fields: minute hour day-of-month month day-of-week, or a descriptor such as @weekly)", expr, err)
	}
	// Find the field at fault: parse each one with the others set to "*".
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		if _, perr := parser.Parse(strings.Join(probe, " ")); perr != nil {
			return nil, fmt.Errorf("cron %q: field %d (%s) %q: %v", expr, i+1, fieldNames[i], f, perr)
		}
	}
	return nil, fmt.Errorf("cron %q: %v", expr, err)
}

// LoadZone loads an IANA zone ("Europe/Berlin"); empty means UTC.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, fmt.Errorf("unknown timezone %q: want an IANA zone name such as Europe/Berlin or UTC", name)
	}
	return loc, nil
}

// Parse parses a recurring window's cron, zone and duration.
func Parse(w *rollwavev1.FreezeWindow) (*Schedule, error) {
	s, err := ParseCron(w.GetCron())
	if err != nil {
		return nil, err
	}
	loc, err := LoadZone(w.GetTimezone())
	if err != nil {
		return nil, err
	}
	d := time.Duration(w.GetDurationMs()) * time.Millisecond
	if w.GetDurationMs() <= 0 || d > MaxDuration {
		return nil, fmt.Errorf("duration %s: must be more than 0 and at most %s", d, MaxDuration)
	}
	return &Schedule{sched: s, loc: loc, d: d}, nil
}

// Next returns the first occurrence start strictly after t, in the
// window's zone; zero if it never fires again (within robfig/cron's
// five-year search).
func (s *Schedule) Next(t time.Time) time.Time { return s.sched.Next(t.In(s.loc)) }

// Duration is the length of one occurrence.
func (s *Schedule) Duration() time.Duration { return s.d }

// Location is the zone the cron expression is read in.
func (s *Schedule) Location() *time.Location { return s.loc }

// ActiveAt reports whether an occurrence holds at t and, if so, when the
// stretch of back-to-back occurrences it belongs to ends.
func (s *Schedule) ActiveAt(t time.Time) (bool, time.Time) {
	// The occurrence that could hold at t started in (t-d, t].
	start := s.Next(t.Add(-s.d))
	if start.IsZero() || start.After(t) {
		return false, time.Time{}
	}
	end := start.Add(s.d)
	for range mergeLimit {
		n := s.Next(start)
		if n.IsZero() || n.After(end) {
			break
		}
		start, end = n, n.Add(s.d)
	}
	return true, end
}

// Validate checks a window before it is stored: one-off windows need
// from < to; recurring ones a cron expression that fires, a known zone, a
// duration in (0, 31 days] no longer than the shortest gap between two
// occurrences (else the window would never end), and no from/to. now
// anchors the gap check.
func Validate(w *rollwavev1.FreezeWindow, now time.Time) error {
	for i, a := range w.GetApps() {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("apps[%d] is empty", i)
		}
	}
	for i, c := range w.GetCells() {
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("cells[%d] is empty", i)
		}
	}
	if !Recurring(w) {
		if w.GetDurationMs() != 0 || w.GetTimezone() != "" {
			return errors.New("duration and timezone apply only to a recurring window (with cron)")
		}
		if w.GetFromUnixNano() <= 0 || w.GetToUnixNano() <= w.GetFromUnixNano() {
			return errors.New("a one-off window needs from before to")
		}
		return nil
	}
	if w.GetFromUnixNano() != 0 || w.GetToUnixNano() != 0 {
		return errors.New("a recurring window (cron) takes no from/to")
	}
	s, err := Parse(w)
	if err != nil {
		return err
	}
	prev := s.Next(now)
	if prev.IsZero() {
		return fmt.Errorf("cron %q never fires", w.GetCron())
	}
	for range gapSamples {
		n := s.Next(prev)
		if n.IsZero() {
			break
		}
		if gap := n.Sub(prev); s.d > gap {
			return fmt.Errorf("duration %s is longer than the %s between the occurrences at %s and %s: the window would never end",
				s.d, gap, prev.Format(time.RFC3339), n.Format(time.RFC3339))
		}
		prev = n
	}
	return nil
}

// Covers reports whether w's scope includes app and any of cells (an
// empty apps or cells list covers all; empty cells from the caller
// matches only windows without a cell scope).
func Covers(w *rollwavev1.FreezeWindow, app string, cells []string) bool {
	if len(w.GetApps()) > 0 && !slices.Contains(w.GetApps(), app) {
		return false
	}
	if len(w.GetCells()) == 0 {
		return true
	}
	for _, c := range cells {
		if slices.Contains(w.GetCells(), c) {
			return true
		}
	}
	return false
}

// Hold is a window active at a time.
type Hold struct {
	Window *rollwavev1.FreezeWindow
	// Until is when the window (its current stretch of occurrences) ends;
	// zero when Err is set.
	Until time.Time
	// Err: the stored window cannot be evaluated. It is treated as active
	// (fail closed), so nothing starts until it is fixed or removed.
	Err error
}

// Reason says which window holds and until when, for events, status and
// an agent's refusal: `freeze window "frz-1a2b" (cron "0 18 * * FRI" for
// 62h0m0s in Europe/Berlin) until 2026-12-07T08:00:00+01:00
// (2026-12-07T07:00:00Z): weekend`.
func (h Hold) Reason() string {
	w := h.Window
	var b strings.Builder
	fmt.Fprintf(&b, "freeze window %q", w.GetId())
	if Recurring(w) {
		zone := w.GetTimezone()
		if zone == "" {
			zone = "UTC"
		}
		fmt.Fprintf(&b, " (cron %q for %s in %s)", w.GetCron(), time.Duration(w.GetDurationMs())*time.Millisecond, zone)
	}
	if len(w.GetApps()) > 0 {
		fmt.Fprintf(&b, " apps %s", strings.Join(w.GetApps(), ","))
	}
	if len(w.GetCells()) > 0 {
		fmt.Fprintf(&b, " cells %s", strings.Join(w.GetCells(), ","))
	}
	if h.Err != nil {
		fmt.Fprintf(&b, " cannot be evaluated (%v); treated as active until fixed or removed", h.Err)
	} else {
		loc := time.UTC
		if l, err := LoadZone(w.GetTimezone()); err == nil {
			loc = l
		}
		until := h.Until.In(loc).Format(time.RFC3339)
		if loc != time.UTC {
			until += " (" + h.Until.UTC().Format(time.RFC3339) + ")"
		}
		b.WriteString(" until " + until)
	}
	if w.GetReason() != "" {
		b.WriteString(": " + w.GetReason())
	}
	return b.String()
}

// Active reports whether w holds at t (whatever its scope) and until when.
func Active(w *rollwavev1.FreezeWindow, t time.Time) Hold {
	if !Recurring(w) {
		n := t.UnixNano()
		if w.GetFromUnixNano() <= n && n < w.GetToUnixNano() {
			return Hold{Window: w, Until: time.Unix(0, w.GetToUnixNano()).UTC()}
		}
		return Hold{}
	}
	s, err := Parse(w)
	if err != nil {
		return Hold{Window: w, Err: err}
	}
	if on, until := s.ActiveAt(t); on {
		return Hold{Window: w, Until: until}
	}
	return Hold{}
}

// ActiveAt returns the windows that hold app in cells at t, the one that
// ends last first (then by id).
func ActiveAt(windows []*rollwavev1.FreezeWindow, app string, cells []string, t time.Time) []Hold {
	var out []Hold
	for _, w := range windows {
		if !Covers(w, app, cells) {
			continue
		}
		if h := Active(w, t); h.Window != nil {
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b Hold) int {
		if (a.Err != nil) != (b.Err != nil) {
			if a.Err != nil {
				return -1
			}
			return 1
		}
		if c := b.Until.Compare(a.Until); c != 0 {
			return c
		}
		return strings.Compare(a.Window.GetId(), b.Window.GetId())
	})
	return out
}

// Occurrence is one span of a window.
type Occurrence struct{ From, To time.Time }

// Upcoming returns up to n occurrences of w that start after t (a one-off
// window: itself, if it starts after t).
func Upcoming(w *rollwavev1.FreezeWindow, t time.Time, n int) ([]Occurrence, error) {
	if !Recurring(w) {
		if w.GetFromUnixNano() > t.UnixNano() && n > 0 {
			return []Occurrence{{time.Unix(0, w.GetFromUnixNano()).UTC(), time.Unix(0, w.GetToUnixNano()).UTC()}}, nil
		}
		return nil, nil
	}
	s, err := Parse(w)
	if err != nil {
		return nil, err
	}
	var out []Occurrence
	for cur := t; len(out) < n; {
		next := s.Next(cur)
		if next.IsZero() {
			break
		}
		out = append(out, Occurrence{next, next.Add(s.d)})
		cur = next
	}
	return out, nil
}

// ScheduleOf is the list view of w at now: active, until, next 3.
func ScheduleOf(w *rollwavev1.FreezeWindow, now time.Time) *rollwavev1.FreezeSchedule {
	out := &rollwavev1.FreezeSchedule{WindowId: w.GetId()}
	h := Active(w, now)
	if h.Err != nil {
		out.Active, out.Error = true, h.Err.Error()
		return out
	}
	if h.Window != nil {
		out.Active, out.ActiveUntilUnixNano = true, h.Until.UnixNano()
	}
	occ, _ := Upcoming(w, now, 3)
	for _, o := range occ {
		out.Next = append(out.Next, &rollwavev1.FreezeOccurrence{FromUnixNano: o.From.UnixNano(), ToUnixNano: o.To.UnixNano()})
	}
	return out
}
