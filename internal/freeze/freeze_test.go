package freeze_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/freeze"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func weekend() *rollwavev1.FreezeWindow {
	return &rollwavev1.FreezeWindow{Id: "weekend", Cron: "0 18 * * FRI", DurationMs: (62 * time.Hour).Milliseconds(),
		Timezone: "Europe/Berlin", Reason: "weekend"}
}

// TestActiveAcrossDST: a 62 h weekend window from Friday 18:00 Berlin
// time lasts 62 h of elapsed time, so across a DST change it ends an hour
// earlier (autumn) or later (spring) on the wall clock; cron times that a
// spring-forward skips do not fire, and ones an autumn change repeats
// fire twice (robfig/cron's rules).
func TestActiveAcrossDST(t *testing.T) {
	daily := &rollwavev1.FreezeWindow{Id: "nightly", Cron: "30 2 * * *", DurationMs: time.Hour.Milliseconds(), Timezone: "Europe/Berlin"}
	cases := []struct {
		name   string
		w      *rollwavev1.FreezeWindow
		at     time.Time
		active bool
		until  time.Time // checked when active
	}{
		// A winter weekend: Fri 18:00 CET to Mon 08:00 CET.
		{"winter friday before", weekend(), time.Date(2026, 12, 4, 17, 59, 0, 0, berlin), false, time.Time{}},
		{"winter friday start", weekend(), time.Date(2026, 12, 4, 18, 0, 0, 0, berlin), true, time.Date(2026, 12, 7, 8, 0, 0, 0, berlin)},
		{"winter sunday", weekend(), time.Date(2026, 12, 6, 12, 0, 0, 0, berlin), true, time.Date(2026, 12, 7, 8, 0, 0, 0, berlin)},
		{"winter monday last second", weekend(), time.Date(2026, 12, 7, 7, 59, 59, 0, berlin), true, time.Date(2026, 12, 7, 8, 0, 0, 0, berlin)},
		{"winter monday end is exclusive", weekend(), time.Date(2026, 12, 7, 8, 0, 0, 0, berlin), false, time.Time{}},
		{"wednesday", weekend(), time.Date(2026, 12, 9, 12, 0, 0, 0, berlin), false, time.Time{}},
		// Autumn (clocks go back on Sunday 25 Oct 2026): ends Mon 07:00 CET.
		{"autumn monday 06:59", weekend(), time.Date(2026, 10, 26, 6, 59, 0, 0, berlin), true, time.Date(2026, 10, 26, 7, 0, 0, 0, berlin)},
		{"autumn monday 07:30 over", weekend(), time.Date(2026, 10, 26, 7, 30, 0, 0, berlin), false, time.Time{}},
		// Spring (clocks go forward on Sunday 29 Mar 2026): ends Mon 09:00 CEST.
		{"spring monday 08:30 still frozen", weekend(), time.Date(2026, 3, 30, 8, 30, 0, 0, berlin), true, time.Date(2026, 3, 30, 9, 0, 0, 0, berlin)},
		{"spring monday 09:00 over", weekend(), time.Date(2026, 3, 30, 9, 0, 0, 0, berlin), false, time.Time{}},
		// 02:30 does not exist on 29 Mar 2026: no occurrence that night.
		{"spring-forward night skipped", daily, time.Date(2026, 3, 29, 1, 15, 0, 0, time.UTC), false, time.Time{}},
		{"normal night", daily, time.Date(2026, 3, 28, 2, 45, 0, 0, berlin), true, time.Date(2026, 3, 28, 3, 30, 0, 0, berlin)},
		// 02:30 happens twice on 25 Oct 2026: both occurrences hold,
		// back to back, merged into one stretch (00:30Z to 02:30Z).
		{"autumn night first 02:30", daily, time.Date(2026, 10, 25, 0, 45, 0, 0, time.UTC), true, time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)},
		{"autumn night second 02:30", daily, time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC), true, time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)},
		// A UTC window (no timezone) and a descriptor.
		{"@daily utc", &rollwavev1.FreezeWindow{Id: "d", Cron: "@daily", DurationMs: 2 * time.Hour.Milliseconds()},
			time.Date(2026, 7, 1, 1, 0, 0, 0, time.UTC), true, time.Date(2026, 7, 1, 2, 0, 0, 0, time.UTC)},
		// One-off windows: [from, to).
		{"one-off inside", &rollwavev1.FreezeWindow{Id: "x", FromUnixNano: 100, ToUnixNano: 200}, time.Unix(0, 150), true, time.Unix(0, 200)},
		{"one-off at end", &rollwavev1.FreezeWindow{Id: "x", FromUnixNano: 100, ToUnixNano: 200}, time.Unix(0, 200), false, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := freeze.Active(c.w, c.at)
			if h.Err != nil {
				t.Fatal(h.Err)
			}
			if got := h.Window != nil; got != c.active {
				t.Fatalf("active at %s = %v, want %v", c.at, got, c.active)
			}
			if c.active && !h.Until.Equal(c.until) {
				t.Fatalf("until = %s, want %s", h.Until, c.until)
			}
		})
	}
}

// TestActiveAtScope: apps and cells narrow a window; empty lists cover
// everything; the hold's reason names the window and its end in its zone
// and in UTC.
func TestActiveAtScope(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, berlin)
	scoped := weekend()
	scoped.Id, scoped.Apps, scoped.Cells = "api-eu", []string{"api"}, []string{"eu-1", "eu-2"}
	cases := []struct {
		name  string
		app   string
		cells []string
		want  []string
	}{
		{"app and cell in scope", "api", []string{"us-1", "eu-2"}, []string{"api-eu", "weekend"}},
		{"other app", "web", []string{"eu-1"}, []string{"weekend"}},
		{"other cells", "api", []string{"us-1"}, []string{"weekend"}},
		{"no cells known", "api", nil, []string{"weekend"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := freeze.ActiveAt([]*rollwavev1.FreezeWindow{weekend(), scoped}, c.app, c.cells, at)
			var got []string
			for _, h := range hs {
				got = append(got, h.Window.GetId())
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("holds = %v, want %v", got, c.want)
			}
		})
	}
	h := freeze.ActiveAt([]*rollwavev1.FreezeWindow{weekend()}, "api", nil, at)[0]
	want := `freeze window "weekend" (cron "0 18 * * FRI" for 62h0m0s in Europe/Berlin) until 2026-12-07T08:00:00+01:00 (2026-12-07T07:00:00Z): weekend`
	if h.Reason() != want {
		t.Fatalf("reason:\n got %s\nwant %s", h.Reason(), want)
	}
}

// TestValidate: each bad window is refused with an error naming what is
// wrong.
func TestValidate(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rec := func(cron, zone string, d time.Duration) *rollwavev1.FreezeWindow {
		return &rollwavev1.FreezeWindow{Id: "w", Cron: cron, Timezone: zone, DurationMs: d.Milliseconds()}
	}
	cases := []struct {
		name string
		w    *rollwavev1.FreezeWindow
		want string // "" = valid
	}{
		{"weekend", weekend(), ""},
		{"descriptor", rec("@weekly", "UTC", 48*time.Hour), ""},
		{"bad day of week names the field", rec("0 18 * * FRY", "", time.Hour), "field 5 (day of week) \"FRY\""},
		{"hour out of range names the field", rec("0 25 * * *", "", time.Hour), "field 2 (hour) \"25\""},
		{"too few fields", rec("0 18 * *", "", time.Hour), "want 5 fields"},
		{"seconds field refused", rec("0 0 18 * * FRI", "", time.Hour), "want 5 fields"},
		{"@every refused", rec("@every 1h", "", time.Minute), "@every"},
		{"TZ prefix refused", rec("CRON_TZ=Europe/Berlin 0 18 * * FRI", "", time.Hour), "TZ= prefix"},
		{"unknown zone", rec("0 18 * * FRI", "Europe/Atlantis", time.Hour), `unknown timezone "Europe/Atlantis"`},
		{"zero duration", rec("0 18 * * FRI", "", 0), "duration 0s: must be more than 0"},
		{"over 31 days", rec("0 0 1 1 *", "", 32*24*time.Hour), "at most 744h0m0s"},
		{"longer than the gap", rec("0 18 * * *", "", 25*time.Hour), "longer than the 24h0m0s between the occurrences"},
		{"never fires", rec("0 0 30 2 *", "", time.Hour), "never fires"},
		{"recurring with from", &rollwavev1.FreezeWindow{Cron: "@daily", DurationMs: 1000, FromUnixNano: 5}, "takes no from/to"},
		{"one-off backwards", &rollwavev1.FreezeWindow{FromUnixNano: 10, ToUnixNano: 5}, "from before to"},
		{"one-off with duration", &rollwavev1.FreezeWindow{FromUnixNano: 5, ToUnixNano: 10, DurationMs: 5}, "only to a recurring window"},
		{"empty app", &rollwavev1.FreezeWindow{FromUnixNano: 5, ToUnixNano: 10, Apps: []string{""}}, "apps[0] is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := freeze.Validate(c.w, now)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid window refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted; want an error containing %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// TestUpcomingAndSchedule: the next three occurrences in the window's
// zone, and the list view of an active window.
func TestUpcomingAndSchedule(t *testing.T) {
	now := time.Date(2026, 10, 21, 12, 0, 0, 0, time.UTC)
	occ, err := freeze.Upcoming(weekend(), now, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-10-23T16:00:00Z-2026-10-26T06:00:00Z", "2026-10-30T17:00:00Z-2026-11-02T07:00:00Z", "2026-11-06T17:00:00Z-2026-11-09T07:00:00Z"}
	for i, o := range occ {
		if got := o.From.UTC().Format(time.RFC3339) + "-" + o.To.UTC().Format(time.RFC3339); got != want[i] {
			t.Fatalf("occurrence %d = %s, want %s", i, got, want[i])
		}
	}
	if len(occ) != 3 {
		t.Fatalf("%d occurrences, want 3", len(occ))
	}
	s := freeze.ScheduleOf(weekend(), time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC))
	if !s.GetActive() || time.Unix(0, s.GetActiveUntilUnixNano()).UTC().Format(time.RFC3339) != "2026-10-26T06:00:00Z" || len(s.GetNext()) != 3 {
		t.Fatalf("schedule = %v", s)
	}
	// A stored window that cannot be evaluated fails closed.
	bad := &rollwavev1.FreezeWindow{Id: "bad", Cron: "nonsense", DurationMs: 1000}
	if s := freeze.ScheduleOf(bad, now); !s.GetActive() || s.GetError() == "" {
		t.Fatalf("bad window schedule = %v", s)
	}
	if hs := freeze.ActiveAt([]*rollwavev1.FreezeWindow{bad}, "api", nil, now); len(hs) != 1 || !strings.Contains(hs[0].Reason(), "cannot be evaluated") {
		t.Fatalf("bad window holds = %v", hs)
	}
}
