// Command demo is what `make demo` runs: a narrated local rollwave session.
//
// It starts the real binaries as separate processes on 127.0.0.1 — three
// coordinators (`rollwave server -bootstrap-expect 3`) and six agents
// (`rollwave-agent -unit-driver process`) in three cells — and then, with
// the same `rollwave` CLI an operator types (each command line is printed
// before it runs), rolls the demo HTTP service out: 1.0.0 to every host,
// 2.0.0 phase by phase, and 3.0.0, whose health check starts failing
// during the canary's bake, so rollwave rolls it back on its own. While
// releases run it polls every host's traffic port and prints which version
// each one serves.
//
// Everything lives in one temp dir that is removed at the end. Every child
// runs in its own process group and is stopped on exit, on error and on
// Ctrl-C (and, on Linux, killed by the kernel should the demo itself be
// killed). No root needed.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

type options struct {
	binDir         string        // holds rollwave and rollwave-agent
	demoApp        string        // a built examples/demo-app; empty = build it
	short          bool          // cluster, cells and agents only; no releases
	releaseTimeout time.Duration // per release
	logsTo         string        // where the logs are copied when the demo fails
	keepLogs       bool          // copy them even when it does not
	out            io.Writer

	// stage, when set, is called as each stage begins (tests).
	stage func(name string)
	// result, when set, receives what the run left behind (tests).
	result func(r runResult)
}

// runResult is what a run leaves for a test to check.
type runResult struct {
	tmp    string   // the temp dir (removed by then)
	pids   []int    // every long-running child the demo started
	strays []string // processes the final sweep had to kill
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding rollwave and rollwave-agent (make build)")
	flag.StringVar(&o.demoApp, "demo-app", "", "demo-app binary (default: bin/demo-app if present, else built from examples/demo-app)")
	flag.BoolVar(&o.short, "short", false, "start the cluster and agents, show them, and stop (no releases)")
	flag.DurationVar(&o.releaseTimeout, "release-timeout", 75*time.Second, "give up on a release that has not ended after this long")
	flag.StringVar(&o.logsTo, "logs", "demo-data/logs", "where to copy the processes' logs if the demo fails")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "copy the processes' logs to -logs even when the demo succeeds")
	flag.Parse()
	o.out = os.Stdout
	if o.demoApp == "" {
		if p := filepath.Join(o.binDir, "demo-app"); fileExists(p) {
			o.demoApp = p
		}
	}
	// The signal stays caught until the very end: a second Ctrl-C while
	// the demo stops its children does not leave them behind.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// run returns the exit code: 0 when everything went as expected, 1 when
// something did not, 130 when interrupted.
func run(sig context.Context, o options) int {
	d := &demo{o: o, say: newNarrator(o.out)}
	err := d.run(sig)
	switch {
	case err == nil:
		return 0
	case sig.Err() != nil:
		return 130
	default:
		return 1
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var errInterrupted = errors.New("interrupted")
