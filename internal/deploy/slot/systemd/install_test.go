package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
)

// TestInstallWritesOnlyChanges needs no systemd: Install only touches
// files and the driver's reload bookkeeping.
func TestInstallWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Config{UnitDir: dir, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx := context.Background()
	u := baseUnit()
	path := filepath.Join(dir, "rollwave-api-blue.service")

	changed, err := d.Install(ctx, u)
	if err != nil || !changed {
		t.Fatalf("first install: changed=%v err=%v, want true, nil", changed, err)
	}
	want, _ := Render(u, nil)
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(want) {
		t.Fatalf("file = %q, %v; want the rendered unit", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if g := d.reload.written.Load(); g != 1 {
		t.Errorf("written generation = %d, want 1", g)
	}

	// Identical unit: no write, no new generation (so no reload later).
	before, _ := os.Stat(path)
	if changed, err := d.Install(ctx, u); err != nil || changed {
		t.Fatalf("same install: changed=%v err=%v, want false, nil", changed, err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) || d.reload.written.Load() != 1 {
		t.Errorf("identical install rewrote the file or bumped the generation")
	}

	// A real change is written.
	u.Version = "2.5.0"
	if changed, err := d.Install(ctx, u); err != nil || !changed {
		t.Fatalf("changed install: changed=%v err=%v, want true, nil", changed, err)
	}
	if d.reload.written.Load() != 2 {
		t.Errorf("written generation = %d, want 2", d.reload.written.Load())
	}

	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("unit dir holds %d entries, want 1: %v", len(entries), entries)
	}

	// Invalid units are refused before touching the disk.
	u.ExecStart = []string{"/bin/x", "a\nb"}
	if _, err := d.Install(ctx, u); err == nil {
		t.Fatal("install of an invalid unit succeeded")
	}

	// A cancelled context stops the write.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	u = baseUnit()
	u.Version = "3"
	if _, err := d.Install(cctx, u); err == nil {
		t.Fatal("install with a cancelled context succeeded")
	}
}

// TestClosedDriver checks calls after Close fail with ErrClosed rather
// than dialling again.
func TestClosedDriver(t *testing.T) {
	d, err := New(Config{UnitDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	if err := d.Start(context.Background(), "api", slot.Blue); err != ErrClosed {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestDBusErrorName covers both forms godbus returns and wrapping.
func TestDBusErrorName(t *testing.T) {
	v := dbus.Error{Name: errNoSuchUnit}
	if !isNoSuchUnit(fmt.Errorf("stop: %w", v)) {
		t.Error("wrapped dbus.Error not recognised")
	}
	if !isNoSuchUnit(fmt.Errorf("stop: %w", &dbus.Error{Name: errNoSuchUnit})) {
		t.Error("wrapped *dbus.Error not recognised")
	}
	if isNoSuchUnit(fmt.Errorf("other")) || dbusErrorName(nil) != "" {
		t.Error("non-D-Bus error recognised")
	}
}
