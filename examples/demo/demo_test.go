package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// binDir holds rollwave and rollwave-agent built for these tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollwave-demo-test-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for bin, pkg := range map[string]string{"rollwave": "./cmd/coordinator", "rollwave-agent": "./cmd/agent"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, bin), pkg)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic("build " + pkg + ": " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkClean fails the test if anything the demo started is still there.
func checkClean(t *testing.T, r runResult, out string) {
	t.Helper()
	if len(r.pids) != 9 {
		t.Errorf("expected 9 long-running children (3 servers, 6 agents), got %d", len(r.pids))
	}
	for _, pid := range r.pids {
		// Each was reaped by the demo; its group must be gone too.
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists after the demo (kill: %v)", pid, err)
		}
	}
	if len(r.strays) > 0 {
		t.Errorf("the final sweep found leftover processes: %v", r.strays)
	}
	if _, err := os.Stat(r.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s not removed: %v", r.tmp, err)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}

func TestShortRunStartsClusterAndCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 9 processes")
	}
	var out testutil.SyncBuffer
	var res runResult
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, options{binDir: binDir, short: true, out: &out, result: func(r runResult) { res = r }})
	if code != 0 {
		t.Fatalf("exit code %d, want 0; output:\n%s", code, out.String())
	}
	for _, want := range []string{"$ rollwave cells set edge-1 -risk 1", "$ rollwave hosts", "h6    core"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	checkClean(t, res, out.String())
}

func TestInterruptStopsEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 9 processes")
	}
	var out testutil.SyncBuffer
	var res runResult
	// Like Ctrl-C (signal.NotifyContext cancels): once the agents are
	// being waited for, interrupt.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stage := func(name string) {
		if name == "agents" {
			go func() {
				// Interrupt while the demo waits for the agents to show
				// up, with every process started.
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) && !strings.Contains(out.String(), "-node h6") {
					time.Sleep(20 * time.Millisecond)
				}
				cancel()
			}()
		}
	}
	code := run(ctx, options{binDir: binDir, short: true, out: &out, stage: stage, result: func(r runResult) { res = r }})
	if code != 130 {
		t.Fatalf("exit code %d, want 130; output:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "Interrupted") {
		t.Errorf("output does not say it was interrupted")
	}
	checkClean(t, res, out.String())
}
