//go:build linux

package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

func shUnit(t *testing.T, script, restart string) Unit {
	t.Helper()
	return Unit{App: "app", Slot: Blue, Dir: t.TempDir(), ExecStart: []string{"sh", "-c", script}, Restart: restart,
		Environment: map[string]string{"GREETING": "hi there"}}
}

func mustInstall(t *testing.T, d *ProcessDriver, u Unit) {
	t.Helper()
	if _, err := d.Install(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, d *ProcessDriver, slot Name, cond func(UnitStatus) bool) UnitStatus {
	t.Helper()
	var us UnitStatus
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		us, _ = d.Status(context.Background(), "app", slot)
		return cond(us), fmt.Sprintf("%+v", us)
	})
	return us
}

func TestProcessDriverLifecycle(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	ctx := context.Background()
	if us, _ := d.Status(ctx, "app", Blue); us.Exists || us.ActiveState != "inactive" {
		t.Fatalf("status of a missing unit: %+v", us)
	}
	u := shUnit(t, `echo "$GREETING from $(pwd)"; exec sleep 60`, "no")
	if changed, err := d.Install(ctx, u); err != nil || !changed {
		t.Fatalf("first install: %v, %v", changed, err)
	}
	if changed, _ := d.Install(ctx, u); changed {
		t.Fatal("same unit reported as changed")
	}
	if err := d.Start(ctx, "app", Blue); err != nil {
		t.Fatal(err)
	}
	us, _ := d.Status(ctx, "app", Blue)
	if !us.Running() || us.SubState != "running" {
		t.Fatalf("after start: %+v", us)
	}
	// Own process group.
	if pgid, _ := syscall.Getpgid(us.MainPID); pgid != us.MainPID {
		t.Fatalf("pgid %d, want %d", pgid, us.MainPID)
	}
	// Starting a running unit is a no-op.
	if err := d.Start(ctx, "app", Blue); err != nil {
		t.Fatal(err)
	}
	if us2, _ := d.Status(ctx, "app", Blue); us2.MainPID != us.MainPID {
		t.Fatal("second start replaced the process")
	}
	if err := d.Stop(ctx, "app", Blue); err != nil {
		t.Fatal(err)
	}
	if us, _ := d.Status(ctx, "app", Blue); us.Running() || us.ActiveState != "inactive" || us.SubState != "dead" {
		t.Fatalf("after stop: %+v", us)
	}
	if err := syscall.Kill(us.MainPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists after Stop: %v", us.MainPID, err)
	}
	log, _ := os.ReadFile(filepath.Join(u.Dir, "slot.log"))
	if !strings.Contains(string(log), "hi there from "+u.Dir) {
		t.Fatalf("slot.log = %q", log)
	}
	if err := d.Stop(ctx, "app", Green); err != nil {
		t.Fatalf("stopping a missing unit: %v", err)
	}
	if err := d.Remove(ctx, "app", Blue); err != nil {
		t.Fatal(err)
	}
	if us, _ := d.Status(ctx, "app", Blue); us.Exists {
		t.Fatal("unit exists after Remove")
	}
}

func TestProcessDriverStartFailsWhenProcessExits(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	mustInstall(t, d, shUnit(t, "echo bad flag >&2; exit 2", "always"))
	err := d.Start(context.Background(), "app", Blue)
	if !errors.Is(err, ErrUnitFailed) || !strings.Contains(err.Error(), "bad flag") {
		t.Fatalf("err = %v, want ErrUnitFailed with the log tail", err)
	}
	if us, _ := d.Status(context.Background(), "app", Blue); us.ActiveState != "failed" || us.SubState != "failed" {
		t.Fatalf("status %+v, want failed/failed", us)
	}
}

func TestProcessDriverExecStartPre(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	u := shUnit(t, "exec sleep 60", "no")
	u.ExecStartPre = [][]string{{"sh", "-c", "touch pre-ran"}, {"sh", "-c", "exit 0"}}
	mustInstall(t, d, u)
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(u.Dir, "pre-ran")); err != nil {
		t.Fatal("ExecStartPre did not run in the working directory")
	}
	u2 := shUnit(t, "exec sleep 60", "no")
	u2.Slot = Green
	u2.ExecStartPre = [][]string{{"sh", "-c", "echo migration failed; exit 1"}}
	mustInstall(t, d, u2)
	err := d.Start(context.Background(), "app", Green)
	if !errors.Is(err, ErrUnitFailed) || !strings.Contains(err.Error(), "migration failed") {
		t.Fatalf("failing ExecStartPre: %v", err)
	}
	if us, _ := d.Status(context.Background(), "app", Green); us.MainPID != 0 {
		t.Fatalf("main process started after a failed ExecStartPre: %+v", us)
	}
}

func TestProcessDriverRestartsOnExit(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	// Lives past the settle window, then dies.
	mustInstall(t, d, shUnit(t, "sleep 0.3; exit 1", "on-failure"))
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	first, _ := d.Status(context.Background(), "app", Blue)
	us := waitStatus(t, d, Blue, func(us UnitStatus) bool { return us.Restarts >= 1 && us.Running() })
	if us.MainPID == first.MainPID {
		t.Fatal("restart kept the pid")
	}
}

func TestProcessDriverStartLimit(t *testing.T) {
	t.Parallel()
	d, err := NewProcessDriver(ProcessConfig{Logger: testutil.Logger(t), SettleTime: 50 * time.Millisecond,
		RestartBackoff: 10 * time.Millisecond, RestartBackoffMax: 20 * time.Millisecond, StartLimitBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	mustInstall(t, d, shUnit(t, "sleep 0.1; exit 0", "always"))
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	us := waitStatus(t, d, Blue, func(us UnitStatus) bool { return us.ActiveState == "failed" })
	if us.Restarts != 2 {
		t.Fatalf("restarts = %d, want 2 before the start limit", us.Restarts)
	}
}

func TestProcessDriverNoRestartPolicy(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	mustInstall(t, d, shUnit(t, "sleep 0.2; exit 0", "on-failure"))
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	us := waitStatus(t, d, Blue, func(us UnitStatus) bool { return us.ActiveState == "inactive" })
	if us.Restarts != 0 || us.SubState != "dead" {
		t.Fatalf("clean exit with on-failure: %+v", us)
	}
}

func TestProcessDriverStopEscalatesToKill(t *testing.T) {
	t.Parallel()
	d, err := NewProcessDriver(ProcessConfig{Logger: testutil.Logger(t), SettleTime: 50 * time.Millisecond, StopTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// Ignores SIGTERM and has a child in its group.
	mustInstall(t, d, shUnit(t, `trap "" TERM; sleep 60 & while :; do wait; done`, "always"))
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	us, _ := d.Status(context.Background(), "app", Blue)
	if err := d.Stop(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	// Killed members may linger as zombies until init reaps them.
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		live := liveInGroup(us.MainPID)
		return len(live) == 0, fmt.Sprintf("live processes in group %d: %v", us.MainPID, live)
	})
	if us, _ := d.Status(context.Background(), "app", Blue); us.ActiveState != "inactive" || us.Restarts != 0 {
		t.Fatalf("after stop: %+v (a stopped unit must not restart)", us)
	}
}

func TestProcessDriverCloseStopsAll(t *testing.T) {
	t.Parallel()
	d := newTestDriver(t)
	u := shUnit(t, "exec sleep 60", "always")
	mustInstall(t, d, u)
	if err := d.Start(context.Background(), "app", Blue); err != nil {
		t.Fatal(err)
	}
	us, _ := d.Status(context.Background(), "app", Blue)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(us.MainPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process survived Close: %v", err)
	}
	if err := d.Start(context.Background(), "app", Blue); !errors.Is(err, ErrUnitFailed) {
		t.Fatalf("start after Close: %v", err)
	}
}

func TestProcessDriverInstallValidates(t *testing.T) {
	d := newTestDriver(t)
	for _, u := range []Unit{
		{App: "", Slot: Blue, Dir: "/x", ExecStart: []string{"a"}},
		{App: "a", Slot: "red", Dir: "/x", ExecStart: []string{"a"}},
		{App: "a", Slot: Blue, Dir: "/x"},
		{App: "a", Slot: Blue, Dir: "rel", ExecStart: []string{"a"}},
	} {
		if _, err := d.Install(context.Background(), u); err == nil {
			t.Errorf("unit %+v accepted", u)
		}
	}
}

// liveInGroup lists the pids of process group pgid that are not zombies.
func liveInGroup(pgid int) []string {
	var live []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[2] == fmt.Sprint(pgid) && f[0] != "Z" {
			live = append(live, strings.Fields(s)[0])
		}
	}
	return live
}
