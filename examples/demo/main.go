// Command demo is what `make demo` runs: a narrated local rollwave session.
//
// It starts the real binaries as separate processes on 127.0.0.1 — three
// coordinators (`rollwave server -bootstrap-expect 3`) and six agents
// (`rollwave-agent -unit-driver process`) in three cells — and then, with
// the same `rollwave` CLI an operator types (each command line is printed
// before it runs), rolls the demo HTTP service out: 1.0.0 to every host,
// 2.0.0 phase by phase, and 3.0.0, which serves and passes its health
// check but answers 500 to one request in ten, so the error-rate gate
// fails its canary and rollwave rolls it back on its own. While releases
// run it sends steady requests through every host's traffic port and
// prints which version each one serves. It prints the dashboard's URL
// before the first release and where every process serves /metrics at the
// end; with -keep (DEMO_KEEP=1) the cluster then stays up until Ctrl-C.
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
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
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
	keep           bool          // after the narration, keep the cluster up until Ctrl-C
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
	// gate is the evidence of the bad release's error-rate gate.failed
	// event (nil when the run did not get that far).
	gate map[string]string
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding rollwave and rollwave-agent (make build)")
	flag.StringVar(&o.demoApp, "demo-app", "", "demo-app binary (default: bin/demo-app if present, else built from examples/demo-app)")
	flag.BoolVar(&o.short, "short", false, "start the cluster and agents, show them, and stop (no releases)")
	flag.DurationVar(&o.releaseTimeout, "release-timeout", 75*time.Second, "give up on a release that has not ended after this long")
	flag.StringVar(&o.logsTo, "logs", "demo-data/logs", "where to copy the processes' logs if the demo fails")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "copy the processes' logs to -logs even when the demo succeeds")
	keepDefault, err := envBool("DEMO_KEEP")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollwave-demo:", err)
		os.Exit(2)
	}
	flag.BoolVar(&o.keep, "keep", keepDefault, "after the narration, keep the cluster up (and print where to look) until Ctrl-C; DEMO_KEEP=1 sets it")
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

// envBool reads a boolean environment variable: unset or empty is false.
func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1 or 0 (or true or false)", name, v)
	}
	return b, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var errInterrupted = errors.New("interrupted")
