package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The calendar survives a restart (it is read back from the data dir); a
// damaged file or an oversized calendar changes nothing and crashes
// nothing; a window holds only its scope.
func TestFreezeCalendarPersists(t *testing.T) {
	dir := t.TempDir()
	log := testutil.Logger(t)
	c := loadFreezeCalendar(dir, log)
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC) // a Saturday
	if hs := c.holds("api", "eu-1", now); len(hs) != 0 {
		t.Fatalf("empty calendar holds: %v", hs)
	}
	w := &rollwavev1.FreezeWindow{Id: "weekend", Cron: "0 18 * * FRI", DurationMs: (62 * time.Hour).Milliseconds(), Timezone: "Europe/Berlin", Cells: []string{"eu-1"}}
	if err := c.set(&rollwavev1.FreezeCalendar{Windows: []*rollwavev1.FreezeWindow{w}}); err != nil {
		t.Fatal(err)
	}
	again := loadFreezeCalendar(dir, log)
	if hs := again.holds("api", "eu-1", now); len(hs) != 1 || hs[0].Window.GetId() != "weekend" {
		t.Fatalf("after a restart: holds %v", hs)
	}
	if hs := again.holds("api", "us-1", now); len(hs) != 0 {
		t.Fatalf("a window scoped to eu-1 holds us-1: %v", hs)
	}
	// Within freezeSkew of either end the agent lets the leader's order
	// through (the leader's clock decided); past it, it refuses.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	opens := time.Date(2026, 12, 4, 18, 0, 0, 0, berlin)
	closes := time.Date(2026, 12, 7, 8, 0, 0, 0, berlin)
	for _, tc := range []struct {
		at   time.Time
		held bool
	}{
		{opens.Add(10 * time.Second), false},
		{opens.Add(freezeSkew), true},
		{closes.Add(-10 * time.Second), false},
		{closes.Add(-freezeSkew - time.Second), true},
	} {
		if hs := again.holds("api", "eu-1", tc.at); (len(hs) > 0) != tc.held {
			t.Errorf("at %s: holds %v, want held %v", tc.at, hs, tc.held)
		}
	}
	big := make([]*rollwavev1.FreezeWindow, maxFreezeWindows+1)
	for i := range big {
		big[i] = w
	}
	if err := again.set(&rollwavev1.FreezeCalendar{Windows: big}); err == nil {
		t.Fatal("an oversized calendar was accepted")
	}
	if hs := again.holds("api", "eu-1", now); len(hs) != 1 {
		t.Fatalf("a refused calendar replaced the stored one: %v", hs)
	}
	if err := os.WriteFile(filepath.Join(dir, "freezes.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if hs := loadFreezeCalendar(dir, log).holds("api", "eu-1", now); len(hs) != 0 {
		t.Fatalf("a damaged file: holds %v", hs)
	}
}
