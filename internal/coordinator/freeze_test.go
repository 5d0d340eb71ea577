package coordinator_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 18 item 4: a recurring freeze window is checked before it is
// stored (the error names the cron field, the zone or the duration, and
// nothing is stored); a good one is listed with whether it holds now and
// its next three occurrences.
func TestRecurringFreezeWindows(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	cl := c.Client(c.Leader(30 * time.Second))
	bg := ctx(t)
	for _, tc := range []struct {
		name string
		req  *rollwavev1.AddFreezeRequest
		want string
	}{
		{"bad field", &rollwavev1.AddFreezeRequest{Cron: "0 18 * * FRY", DurationMs: 3600_000, Reason: "r"}, `field 5 (day of week) "FRY"`},
		{"unknown zone", &rollwavev1.AddFreezeRequest{Cron: "@weekly", DurationMs: 3600_000, Timezone: "Europe/Atlantis", Reason: "r"}, `unknown timezone "Europe/Atlantis"`},
		{"no duration", &rollwavev1.AddFreezeRequest{Cron: "@weekly", Reason: "r"}, "duration 0s"},
		{"never ends", &rollwavev1.AddFreezeRequest{Cron: "@hourly", DurationMs: 2 * 3600_000, Reason: "r"}, "would never end"},
		{"no reason", &rollwavev1.AddFreezeRequest{Cron: "@weekly", DurationMs: 3600_000}, "-reason"},
	} {
		_, err := cl.AddFreeze(bg, tc.req)
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.want)
	}
	if ls, err := cl.ListFreezes(bg, &rollwavev1.ListFreezesRequest{}); err != nil || len(ls.GetWindows()) != 0 {
		t.Fatalf("refused windows were stored: %v %v", ls, err)
	}
	// Every minute for a minute: always active.
	always, err := cl.AddFreeze(bg, &rollwavev1.AddFreezeRequest{Cron: "* * * * *", DurationMs: 60_000, Timezone: "Europe/Berlin",
		Apps: []string{"api"}, Reason: "always", Actor: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	weekly, err := cl.AddFreeze(bg, &rollwavev1.AddFreezeRequest{Cron: "@weekly", DurationMs: 3600_000, Reason: "weekly", Actor: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := cl.ListFreezes(bg, &rollwavev1.ListFreezesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.GetWindows()) != 2 || len(ls.GetSchedules()) != 2 || ls.GetNowUnixNano() == 0 {
		t.Fatalf("list = %v", ls)
	}
	for i, w := range ls.GetWindows() {
		s := ls.GetSchedules()[i]
		if s.GetWindowId() != w.GetId() || len(s.GetNext()) != 3 {
			t.Fatalf("schedule %d = %v for window %v", i, s, w)
		}
		switch w.GetId() {
		case always.GetWindow().GetId():
			if !s.GetActive() || s.GetActiveUntilUnixNano() <= ls.GetNowUnixNano() || w.GetApps()[0] != "api" {
				t.Errorf("always-on window: %v %v", w, s)
			}
		case weekly.GetWindow().GetId():
			// Sunday 00:00 UTC for an hour: the list runs at any time.
			now := time.Unix(0, ls.GetNowUnixNano()).UTC()
			want := now.Weekday() == time.Sunday && now.Hour() == 0
			if s.GetActive() != want || time.Unix(0, s.GetNext()[0].GetFromUnixNano()).UTC().Weekday() != time.Sunday {
				t.Errorf("weekly window: %v", s)
			}
		}
	}
}
