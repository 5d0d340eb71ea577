package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
)

// realDriver returns a driver on this host's systemd, or skips the test
// when there is none: systemd must be PID 1 (/run/systemd/system exists),
// we must be root, and the system bus must answer.
func realDriver(t *testing.T) *Driver {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		t.Skip("systemd is not PID 1 on this machine (/run/systemd/system missing); run inside a systemd host")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to write units to /etc/systemd/system")
	}
	d, err := New(Config{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Connect(ctx); err != nil {
		_ = d.Close()
		t.Skipf("system bus not reachable: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// cmdline returns a process's argv.
func cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// TestDriverAgainstRealSystemd drives real units through their whole life.
// No fake stands in for systemd: this skips unless it runs on a systemd
// host (the integration hosts are systemd-nspawn containers).
func TestDriverAgainstRealSystemd(t *testing.T) {
	d := realDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	app := fmt.Sprintf("rwtest-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	dir := t.TempDir()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, s := range []slot.Name{slot.Blue, slot.Green} {
			if err := d.Remove(cctx, app, s); err != nil {
				t.Errorf("cleanup: remove %s: %v", s, err)
			}
		}
	})

	// The pre-check proves Environment= quoting end to end: the shell sees
	// exactly the Go string, "$" and "%" included. The main command's
	// argv (read from /proc) proves ExecStart= quoting.
	greeting := `hello "world" $HOME 100% back\slash it's`
	check := func(version string) []string {
		return []string{"/bin/sh", "-c", `[ "$GREETING" = "$1" ] && [ "$ROLLWAVE_PORT" = 18081 ] && [ "$ROLLWAVE_SLOT" = blue ] && [ "$VERSION" = "$2" ] && [ "$(pwd)" = "$3" ]`,
			"check", greeting, version, dir}
	}
	main := []string{"/bin/sh", "-c", "while :; do sleep 1; done", "rw main", `a "b" $c 50%`, ""}
	unit := func(version string) slot.Unit {
		return slot.Unit{
			App: app, Slot: slot.Blue, Version: version, Dir: dir, Port: 18081,
			ExecStartPre: [][]string{check(version)},
			ExecStart:    main,
			Environment:  map[string]string{"GREETING": greeting, "VERSION": version},
		}
	}

	// A never-installed unit: absent, and stopping it is fine.
	st, err := d.Status(ctx, app, slot.Blue)
	if err != nil || st.Exists {
		t.Fatalf("status before install = %+v, %v; want not existing", st, err)
	}
	if err := d.Stop(ctx, app, slot.Blue); err != nil {
		t.Fatalf("stop of a missing unit: %v", err)
	}

	// Install + start: exactly one daemon-reload.
	if changed, err := d.Install(ctx, unit("1")); err != nil || !changed {
		t.Fatalf("install: changed=%v err=%v", changed, err)
	}
	if err := d.Start(ctx, app, slot.Blue); err != nil {
		t.Fatalf("start: %v", err)
	}
	if n := d.reloadCount(); n != 1 {
		t.Fatalf("reloads after first start = %d, want 1", n)
	}
	st, err = d.Status(ctx, app, slot.Blue)
	if err != nil || !st.Exists || !st.Running() || st.SubState != "running" {
		t.Fatalf("status after start = %+v, %v; want running", st, err)
	}
	if argv, err := cmdline(st.MainPID); err != nil || !slices.Equal(argv, main) {
		t.Fatalf("main process argv = %q (%v), want %q", argv, err, main)
	}
	firstPID := st.MainPID

	// A closed connection (bus restarted, systemd re-executed) is replaced
	// on the next call.
	d.connMu.Lock()
	d.conn.Close()
	d.connMu.Unlock()
	if st, err := d.Status(ctx, app, slot.Blue); err != nil || st.MainPID != firstPID {
		t.Fatalf("status after the connection closed = %+v, %v; want a reconnect and the same PID", st, err)
	}

	// Identical install: nothing written, and starting again (a no-op on
	// a running unit) does not reload.
	if changed, err := d.Install(ctx, unit("1")); err != nil || changed {
		t.Fatalf("identical install: changed=%v err=%v", changed, err)
	}
	if err := d.Start(ctx, app, slot.Blue); err != nil {
		t.Fatalf("start of a running unit: %v", err)
	}
	if n := d.reloadCount(); n != 1 {
		t.Fatalf("reloads after identical install = %d, want 1", n)
	}

	// Changed unit: written, and the restart reloads once and runs it.
	if changed, err := d.Install(ctx, unit("2")); err != nil || !changed {
		t.Fatalf("changed install: changed=%v err=%v", changed, err)
	}
	if err := d.Stop(ctx, app, slot.Blue); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := d.Start(ctx, app, slot.Blue); err != nil {
		t.Fatalf("restart with version 2: %v", err)
	}
	if n := d.reloadCount(); n != 2 {
		t.Fatalf("reloads after changed install = %d, want 2", n)
	}
	st, err = d.Status(ctx, app, slot.Blue)
	if err != nil || !st.Running() || st.MainPID == firstPID || st.Restarts != 0 {
		t.Fatalf("status after restart = %+v, %v; want running with a new PID, no restarts", st, err)
	}

	// A fresh driver (an agent restart) finds the unit file rewritten but
	// not reloaded (the previous agent died in between): it reloads
	// because systemd reports NeedDaemonReload, not because of its own
	// bookkeeping. The unit is running, so systemd keeps it loaded with
	// the old file and cannot have re-read the new one on its own.
	if changed, err := d.Install(ctx, unit("3")); err != nil || !changed {
		t.Fatalf("install v3: changed=%v err=%v", changed, err)
	}
	d2 := realDriver(t)
	if err := d2.Start(ctx, app, slot.Blue); err != nil {
		t.Fatalf("start from a fresh driver: %v", err)
	}
	if n := d2.reloadCount(); n != 1 {
		t.Fatalf("fresh driver reloads = %d, want 1 (systemd reported the unit stale)", n)
	}
	if err := d2.Start(ctx, app, slot.Blue); err != nil {
		t.Fatalf("second start from the fresh driver: %v", err)
	}
	if n := d2.reloadCount(); n != 1 {
		t.Fatalf("second start from the fresh driver reloaded again: %d reloads", n)
	}

	// Stop: inactive, no main process; stopping again is fine.
	if err := d.Stop(ctx, app, slot.Blue); err != nil {
		t.Fatalf("stop: %v", err)
	}
	st, err = d.Status(ctx, app, slot.Blue)
	if err != nil || st.ActiveState != "inactive" || st.MainPID != 0 {
		t.Fatalf("status after stop = %+v, %v; want inactive, pid 0", st, err)
	}
	if err := d.Stop(ctx, app, slot.Blue); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	// A unit whose pre-start check fails: Start says ErrUnitFailed with
	// systemd's view, and the error names the unit.
	bad := unit("4")
	bad.Slot = slot.Green
	bad.ExecStartPre = [][]string{{"/bin/false"}}
	// Without auto-restart the unit lands in "failed" on every systemd
	// version (with it, 252 keeps the job waiting through restarts until
	// the start limit, and 254+ reports "activating" between attempts).
	bad.Restart = "no"
	if _, err := d.Install(ctx, bad); err != nil {
		t.Fatal(err)
	}
	err = d.Start(ctx, app, slot.Green)
	if !errors.Is(err, slot.ErrUnitFailed) || !strings.Contains(err.Error(), slot.UnitName(app, slot.Green)) {
		t.Fatalf("start of a failing unit = %v, want ErrUnitFailed naming the unit", err)
	}
	t.Logf("failing unit reported: %v", err)
	st, err = d.Status(ctx, app, slot.Green)
	if err != nil || st.ActiveState != "failed" {
		t.Fatalf("status of failed unit = %+v, %v; want failed", st, err)
	}

	// Remove: file gone, systemd forgets the unit, and it can be removed
	// or stopped again.
	for _, s := range []slot.Name{slot.Blue, slot.Green} {
		if err := d.Remove(ctx, app, s); err != nil {
			t.Fatalf("remove %s: %v", s, err)
		}
		if _, err := os.Stat(filepath.Join(DefaultUnitDir, slot.UnitName(app, s))); !os.IsNotExist(err) {
			t.Fatalf("unit file for %s still there: %v", s, err)
		}
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			st, err := d.Status(ctx, app, s)
			return err == nil && !st.Exists, fmt.Sprintf("status %+v, %v", st, err)
		})
		if err := d.Stop(ctx, app, s); err != nil {
			t.Fatalf("stop after remove: %v", err)
		}
	}
}
