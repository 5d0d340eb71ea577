package slot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	s, err := loadState(dir, "api", now)
	if err != nil || s.Active != "" || s.Generation != 0 || s.Slots == nil {
		t.Fatalf("fresh host: %+v, %v", s, err)
	}
	u := Unit{App: "api", Slot: Green, Dir: "/d", ExecStart: []string{"x"}, Environment: map[string]string{"A": "b"}}
	s.Active, s.From, s.To, s.Generation, s.KeepOld = Green, Blue, Green, 7, "hot"
	s.Slots[Green] = &SlotState{Version: "2", Generation: 7, Port: 8082, UnitHash: unitHash(u), Unit: &u}
	s.Traffic = &TrafficState{Mode: "proxy", Listen: ":8080"}
	s.Op = &Operation{Kind: OpSwap, Generation: 7, From: Blue, To: Green, Step: StepReady, StartedAt: now, Reason: "r"}
	s.setResult(7, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, "", now)
	if err := saveState(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir, "api", now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	// No temp files are left next to it.
	entries, _ := os.ReadDir(filepath.Join(dir, "apps", "api"))
	if len(entries) != 1 {
		t.Fatalf("app dir holds %d entries, want only state.json", len(entries))
	}
}

func TestStateResultsBounded(t *testing.T) {
	s := &State{}
	for g := uint64(1); g <= maxResults+5; g++ {
		s.setResult(g, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, "", time.Time{})
		s.setResult(g, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, "", time.Time{})
	}
	if len(s.Results) != maxResults {
		t.Fatalf("%d results kept, want %d", len(s.Results), maxResults)
	}
	if r, _ := s.LastResult(); r.Generation != maxResults+5 || r.AssignmentState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED {
		t.Fatalf("last result %+v", r)
	}
}

func TestStateCorruptMovedAside(t *testing.T) {
	cases := []struct {
		name, body string
	}{
		// not JSON at all (torn by a broken disk, edited by hand)
		{"garbage", "{nope"},
		// JSON, but for another app
		{"wrong app", `{"format":1,"app":"other"}`},
		// unknown format version
		{"format", `{"format":99,"app":"api"}`},
		// a slot name that is neither blue nor green
		{"bad slot", `{"format":1,"app":"api","active":"red"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := statePath(dir, "api")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
			_, err := loadState(dir, "api", now)
			if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), "corrupt-20261129T040000") {
				t.Fatalf("err = %v", err)
			}
			b, err := os.ReadFile(p + ".corrupt-20261129T040000.000000000Z")
			if err != nil || string(b) != c.body {
				t.Fatalf("aside copy: %q, %v", b, err)
			}
		})
	}
}

func TestRenderUnit(t *testing.T) {
	spec := &rollwavev1.ReleaseSpec{Unit: &rollwavev1.UnitSpec{
		ExecStart:        `{{slot_dir}}/bin/api --listen "127.0.0.1:{{port}}" --name '{{app}} {{slot}}'`,
		ExecStartPre:     []string{"{{slot_dir}}/bin/migrate --version {{version}}"},
		Environment:      map[string]string{"ADDR": "127.0.0.1:{{port}}", "ROLLWAVE_PORT": "override"},
		WorkingDirectory: "{{slot_dir}}/run",
		User:             "api",
	}}
	u, err := RenderUnit(spec, "api", Green, "2.4.0", "/var/lib/rollwave/apps/api/green", 8082)
	if err != nil {
		t.Fatal(err)
	}
	want := Unit{
		App: "api", Slot: Green, Version: "2.4.0", Dir: "/var/lib/rollwave/apps/api/green", Port: 8082,
		ExecStart:        []string{"/var/lib/rollwave/apps/api/green/bin/api", "--listen", "127.0.0.1:8082", "--name", "api green"},
		ExecStartPre:     [][]string{{"/var/lib/rollwave/apps/api/green/bin/migrate", "--version", "2.4.0"}},
		User:             "api",
		WorkingDirectory: "/var/lib/rollwave/apps/api/green/run",
		Restart:          "on-failure",
		Environment: map[string]string{
			"ADDR": "127.0.0.1:8082", "ROLLWAVE_PORT": "override", "ROLLWAVE_APP": "api", "ROLLWAVE_SLOT": "green",
			"ROLLWAVE_VERSION": "2.4.0", "ROLLWAVE_SLOT_DIR": "/var/lib/rollwave/apps/api/green",
		},
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got  %+v\nwant %+v", u, want)
	}
	bad := []*rollwavev1.UnitSpec{
		{ExecStart: "x {{nope}}"},
		{ExecStart: "x 'unterminated"},
		{ExecStart: ""},
		{ExecStart: "x", Restart: "sometimes"},
		{ExecStart: "x", WorkingDirectory: "relative"},
		{ExecStart: "x", Environment: map[string]string{"A": "{{bad}}"}},
	}
	for _, us := range bad {
		if _, err := RenderUnit(&rollwavev1.ReleaseSpec{Unit: us}, "api", Blue, "1", "/d", 1); err == nil {
			t.Errorf("unit %+v accepted", us)
		}
	}
}
