// Command gossipbench runs the gossip benchmark (test/bench/gossip) at one
// or more pool sizes, prints the table and writes the results as JSON on
// stdout with -json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	gossipbench "github.com/rollwave/rollwave/test/bench/gossip"
)

func main() {
	var (
		bin     = flag.String("bin", "bin/rollwave", "the rollwave binary (coordinators)")
		ns      = flag.String("n", "1000 2000", "pool sizes (agents), space or comma separated")
		profile = flag.String("profile", "lan", "memberlist tuning (lan, wan, lan-susp6, lan-gossip4, lan-probe2s)")
		idle    = flag.Duration("idle", 20*time.Second, "idle false-suspicion window")
		load    = flag.Duration("load", 20*time.Second, "false-suspicion window with stress-ng on every core (0 skips)")
		dir     = flag.String("dir", "", "directory for coordinator data and logs (default: a temporary one)")
		timeout = flag.Duration("timeout", 6*time.Minute, "bound on each size's run")
		asJSON  = flag.Bool("json", false, "print the results as JSON instead of a table")
		jsonOut = flag.String("json-out", "", "also write the results as JSON to this file")
		settle  = flag.Duration("settle", 3*time.Minute, "bound on the wait for every agent to see every member after the ramp")
		quiet   = flag.Duration("quiet", 0, "bound on the wait, once settled, for the ramp's broadcast backlog to drain (0: -settle)")
		quietBy = flag.Float64("quiet-bps", 0, "gossip sent per member (B/s) under which the pool counts as drained (0: the package default, 400)")
		verbose = flag.Bool("v", false, "log the settling progress")
		cpuProf = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		memProf = flag.String("memprofile", "", "write a heap profile with the pool settled to this file (per size: N is appended)")
		memLim  = flag.Int64("memlimit-mib", 0, "the harness's soft memory limit in MiB (0: the package default)")
		gogc    = flag.Int("gogc", 0, "run the harness's collector at this GOGC instead of only near the memory limit (0: collector off until the limit)")
		pace    = flag.Float64("ramp-pace", gossipbench.DefaultRampPace, "pace the ramp: after each batch wait until this process's CPU is at most this share of the machine (0-1] and every member's health score is 0; negative: unpaced")
		batch   = flag.Int("ramp-batch", 8, "agents joined at once (one batch) during the ramp")
		batchTO = flag.Duration("ramp-batch-timeout", 30*time.Second, "longest wait after one batch before the ramp goes on anyway")
	)
	flag.Parse()
	if err := gossipbench.CheckBin(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "gossipbench:", err)
		os.Exit(2)
	}
	sizes, err := gossipbench.ParseSizes(*ns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gossipbench:", err)
		os.Exit(2)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "gossipbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "gossipbench:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gossipbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	var out []*gossipbench.Result
	code := 0
	for _, n := range sizes {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		r, err := gossipbench.Run(ctx, gossipbench.Options{ServerBin: *bin, Dir: fmt.Sprintf("%s/n%d", *dir, n), N: n,
			Profile: *profile, IdleWindow: *idle, LoadWindow: *load, SettleTimeout: *settle, Log: os.Stderr, LogLevel: level, HeapProfile: heapPath(*memProf, n), MemLimit: *memLim << 20, GCPercent: *gogc,
			QuietTimeout: *quiet, QuietBytesPerSec: *quietBy, JoinParallel: *batch, RampPace: *pace, RampBatchTimeout: *batchTO})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gossipbench: N=%d: %v\n", n, err)
			code = 1
		}
		if r != nil { // partial figures when the run stopped early
			out = append(out, r)
			if m := r.Missing(); len(m) > 0 {
				fmt.Fprintf(os.Stderr, "gossipbench: N=%d: incomplete: %s\n", n, strings.Join(m, "; "))
				code = 1
			}
		}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if *jsonOut != "" {
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gossipbench:", err)
			code = 1
		}
	}
	if *asJSON {
		fmt.Println(string(b))
	} else {
		w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "FIGURE\tVALUE\tTARGET\t")
		for _, r := range out {
			gossipbench.TableRows(w, r)
		}
		w.Flush()
	}
	pprof.StopCPUProfile()
	os.Exit(code)
}

func heapPath(p string, n int) string {
	if p == "" {
		return ""
	}
	return fmt.Sprintf("%s.%d", p, n)
}
