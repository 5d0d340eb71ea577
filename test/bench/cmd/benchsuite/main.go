// Command benchsuite runs rollwave's benchmark suite (`make bench`): the
// fleet simulator at one or more fleet sizes, the leader-kill rounds and
// the agent footprint, then prints a table and writes every figure as
// JSON. Each part has its own time bound.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rollwave/rollwave/test/bench/charts"
	"github.com/rollwave/rollwave/test/bench/fleet"
	"github.com/rollwave/rollwave/test/bench/footprint"
	gossipbench "github.com/rollwave/rollwave/test/bench/gossip"
	"github.com/rollwave/rollwave/test/bench/realhost"
)

// Results is everything one suite run measured.
type Results struct {
	Machine   Machine               `json:"machine"`
	Started   time.Time             `json:"started"`
	Fleet     []*fleet.Result       `json:"fleet"`
	Kill      *fleet.Result         `json:"leader_kill,omitempty"`
	Multi     *fleet.Result         `json:"multi_release,omitempty"`
	Regions   *fleet.RegionsResult  `json:"regions,omitempty"`
	Footprint *footprint.Result     `json:"agent_footprint,omitempty"`
	RealHost  *realhost.Result      `json:"real_hosts,omitempty"`
	Gossip    []*gossipbench.Result `json:"gossip,omitempty"`
	Errors    map[string]string     `json:"errors,omitempty"`
	// Missed: figures a part could not take on this machine (a gossip
	// pool that did not build within its budget), with what stopped it.
	// The table says so; unlike Errors they do not fail the run.
	Missed map[string]string      `json:"missed,omitempty"`
	Extra  map[string]interface{} `json:"extra,omitempty"`
}

// Machine describes where the suite ran.
type Machine struct {
	NProc  int    `json:"nproc"`
	MemMiB int    `json:"mem_mib"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	CPU    string `json:"cpu"`
}

func machine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.MemMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func main() {
	var (
		bin     = flag.String("bin", "bin", "directory with rollwave and rollwave-agent")
		ns      = flag.String("n", "1000", "fleet sizes to simulate, space or comma separated")
		swap    = flag.Duration("swap-latency", 200*time.Millisecond, "simulated swap time per host")
		jitter  = flag.Duration("swap-jitter", 100*time.Millisecond, "uniform random extra swap time per host (keeps phases from locking onto the leader's 100 ms flush tick)")
		killN   = flag.Int("kill-n", 200, "agents during the leader-kill rounds")
		gossipK = flag.Int("gossip-agents", 50, "simulated agents that also join gossip (a sample)")
		kills   = flag.Int("kills", 20, "leader-kill rounds (0 skips)")
		window  = flag.Duration("foot-window", 60*time.Second, "agent idle window (0 skips the footprint)")
		out     = flag.String("out", "bench-results", "directory for results.json and logs")
		perRun  = flag.Duration("run-timeout", 8*time.Minute, "bound on each simulator run")
		settle  = flag.Duration("settle", 10*time.Second, "idle window of each simulator run")
		real    = flag.Bool("realhost", false, "run the real-host part (root: systemd-nspawn hosts, Ansible comparison, isolation)")
		hosts   = flag.Int("hosts", 50, "real hosts for the real-host part")
		rounds  = flag.Int("rounds", 1, "timed rollouts per tool in the Ansible comparison")
		isoR    = flag.Int("isolation-rounds", 2, "isolation rounds (each cuts the canary phase's hosts)")
		blastR  = flag.Int("blast-rps", 50, "blast radius: requests per second per host (at least 20; 0 skips the blast radius)")
		multiK  = flag.Int("multi-apps", 20, "releases at once (one app each, every agent hosting every app) after one alone (0 skips)")
		multiN  = flag.Int("multi-n", 1000, "agents in the many-releases part")
		regs    = flag.String("regions", "eu,us", "regions run side by side, one 3-node cluster each, after the first alone (empty skips)")
		regionN = flag.Int("region-n", 1000, "agents per region in the regions part")
		redraw  = flag.String("charts-from", "", "only redraw the charts (and print the table) of this results.json into -out")
		gossipN = flag.String("gossip-n", "", "real memberlist pool sizes for the gossip part, e.g. \"1000 2000\" (empty skips it)")
		gossipT = flag.Duration("gossip-budget", 8*time.Minute, "wall-clock bound on the whole gossip part")
	)
	flag.Parse()
	if *redraw != "" {
		os.Exit(redrawFrom(*redraw, *out))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	res := &Results{Machine: machine(), Started: time.Now().UTC(), Errors: map[string]string{}, Missed: map[string]string{}}
	server := filepath.Join(*bin, "rollwave")
	agent := filepath.Join(*bin, "rollwave-agent")

	for _, f := range splitList(*ns) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "benchsuite: bad fleet size %q\n", f)
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *perRun)
		r, err := fleet.Run(ctx, fleet.Options{Bin: server, Fleet: fleetCfg(n, *swap, *jitter),
			GossipAgents: *gossipK, Ramp: time.Duration(n) * time.Second / 500, Settle: *settle, Rollout: true, MaxSize: "25%",
			RolloutTimeout: *perRun, RegisterTimeout: 2*time.Minute + time.Duration(n)*20*time.Millisecond, Log: os.Stderr})
		cancel()
		if err != nil {
			res.Errors[fmt.Sprintf("fleet-%d", n)] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: fleet N=%d: %v\n", n, err)
			continue
		}
		res.Fleet = append(res.Fleet, r)
		save(*out, res)
	}
	if *multiK > 0 {
		res.Multi = runMulti(res, server, *multiK, *multiN, *swap, *jitter, *gossipK, *perRun)
		save(*out, res)
	}
	if regions := splitList(*regs); len(regions) > 0 {
		res.Regions = runRegions(res, server, regions, *regionN, *swap, *jitter, *gossipK, *perRun)
		save(*out, res)
	}
	if *kills > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *perRun)
		r, err := fleet.Run(ctx, fleet.Options{Bin: server, Fleet: fleetCfg(*killN, time.Second, 4*time.Second),
			GossipAgents: *gossipK, Ramp: time.Second, Settle: 2 * time.Second, LeaderKills: *kills,
			RegisterTimeout: time.Minute, Log: os.Stderr})
		cancel()
		if err != nil {
			res.Errors["leader-kill"] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: leader kill: %v\n", err)
		} else {
			res.Kill = r
		}
		save(*out, res)
	}
	if *window > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *window+4*time.Minute)
		r, err := footprint.Run(ctx, footprint.Options{ServerBin: server, AgentBin: agent, Window: *window,
			Warmup: 5 * time.Second, Swap: true, Log: os.Stderr})
		cancel()
		if err != nil {
			res.Errors["footprint"] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: footprint: %v\n", err)
		} else {
			res.Footprint = r
		}
		save(*out, res)
	}
	if *gossipN != "" {
		res.Gossip = runGossip(*gossipN, server, *out, *gossipT, res.Errors, res.Missed)
		save(*out, res)
	}
	if *real {
		r, err := runRealHost(*out, *hosts, *rounds, *isoR, *blastR)
		if err != nil {
			res.Errors["real-hosts"] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: real hosts: %v\n", err)
		}
		res.RealHost = r
		save(*out, res)
	}
	table(os.Stdout, res)
	fmt.Printf("\nAll figures: %s\n", filepath.Join(*out, "results.json"))
	drawCharts(*out, res)
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}

// runGossip runs the gossip part (test/bench/gossip) at each size within
// budget in all, short windows. Errors are recorded per size; a pool that
// did not build or settle within its share of the budget is a missed
// figure (missed), printed as such, not a failure of the harness.
func runGossip(sizes, server, out string, budget time.Duration, errs, missed map[string]string) []*gossipbench.Result {
	var rs []*gossipbench.Result
	ns, err := gossipbench.ParseSizes(sizes)
	if err != nil {
		errs["gossip"] = err.Error()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	for i, n := range ns {
		// Split what is left of the budget evenly over the sizes still to
		// run: a smaller size that finishes early leaves the rest to the
		// larger ones, and the smaller one gets the time to complete.
		dl, _ := ctx.Deadline()
		share := time.Until(dl) / time.Duration(len(ns)-i)
		sctx, scancel := context.WithTimeout(ctx, share)
		r, err := gossipbench.Run(sctx, gossipbench.Options{ServerBin: server, Dir: filepath.Join(out, fmt.Sprintf("gossip-%d", n)), N: n,
			IdleWindow: 15 * time.Second, LoadWindow: 15 * time.Second, SettleTimeout: share / 3, QuietTimeout: share / 5, Log: os.Stderr})
		scancel()
		switch {
		case err != nil && r != nil && errors.Is(err, context.DeadlineExceeded):
			// Out of budget: the table says how far the run got and
			// prints no figure it did not measure; the part fails.
			missed[fmt.Sprintf("gossip-%d", n)] = fmt.Sprintf("stopped at the part's budget: %v; missing: %s", err, strings.Join(r.Missing(), "; "))
			fmt.Fprintf(os.Stderr, "benchsuite: gossip N=%d: stopped at the part's budget: %v\n", n, err)
		case err != nil && r != nil && errors.Is(err, gossipbench.ErrNotSettled):
			missed[fmt.Sprintf("gossip-%d", n)] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: gossip N=%d: %v\n", n, err)
		case err != nil:
			errs[fmt.Sprintf("gossip-%d", n)] = err.Error()
			fmt.Fprintf(os.Stderr, "benchsuite: gossip N=%d: %v\n", n, err)
		case len(r.Missing()) > 0:
			missed[fmt.Sprintf("gossip-%d", n)] = "incomplete: " + strings.Join(r.Missing(), "; ")
		}
		if r != nil { // partial figures when the run stopped early
			rs = append(rs, r)
		}
	}
	return rs
}

// runRealHost runs test/bench/realhost's TestRealHostBench (build tag
// e2e, root) and reads the Result it writes. Its log goes to
// out/realhost.log.
func runRealHost(out string, hosts, rounds, isoRounds, blastRPS int) (*realhost.Result, error) {
	file, err := filepath.Abs(filepath.Join(out, "realhost.json"))
	if err != nil {
		return nil, err
	}
	os.Remove(file)
	logf, err := os.Create(filepath.Join(out, "realhost.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "e2e", "-count=1", "-v", "-timeout", "40m",
		"-run", "^TestRealHostBench$", "./test/bench/realhost/")
	cmd.Env = append(os.Environ(), "BENCH_REALHOST_OUT="+file, fmt.Sprintf("BENCH_HOSTS=%d", hosts),
		fmt.Sprintf("BENCH_ROUNDS=%d", rounds), fmt.Sprintf("BENCH_ISOLATION_ROUNDS=%d", isoRounds))
	if blastRPS > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("BENCH_BLAST_RPS=%d", blastRPS))
	} else {
		cmd.Env = append(cmd.Env, "BENCH_BLAST=0")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(os.Stderr, "benchsuite: real hosts (%d hosts; log %s)\n", hosts, logf.Name())
	runErr := cmd.Run()
	var r *realhost.Result
	if b, err := os.ReadFile(file); err == nil {
		r = &realhost.Result{}
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", file, err)
		}
	}
	if runErr != nil {
		return r, fmt.Errorf("go test ./test/bench/realhost: %v (see %s)", runErr, logf.Name())
	}
	if r == nil {
		return nil, fmt.Errorf("no %s written; skipped? (see %s)", file, logf.Name())
	}
	return r, nil
}

// drawCharts writes the SVG charts of res into dir and says where; a
// chart that cannot be drawn is an error of the run.
func drawCharts(dir string, res *Results) {
	files, err := charts.Write(dir, charts.Input{Fleet: res.Fleet, Kill: res.Kill, RealHost: res.RealHost})
	for _, f := range files {
		fmt.Printf("Chart: %s\n", f)
	}
	if err != nil {
		res.Errors["charts"] = err.Error()
		fmt.Fprintf(os.Stderr, "benchsuite: charts: %v\n", err)
	}
}

// redrawFrom prints the table and draws the charts of a results.json
// written by an earlier run.
func redrawFrom(file, out string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsuite:", err)
		return 1
	}
	res := &Results{}
	if err := json.Unmarshal(b, res); err != nil {
		fmt.Fprintf(os.Stderr, "benchsuite: %s: %v\n", file, err)
		return 1
	}
	if res.Errors == nil {
		res.Errors = map[string]string{}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "benchsuite:", err)
		return 1
	}
	table(os.Stdout, res)
	drawCharts(out, res)
	if _, failed := res.Errors["charts"]; failed {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// runMulti is the many-releases part: k releases at once over n agents
// that each host the k apps, after one release alone on the same fleet.
func runMulti(res *Results, server string, k, n int, swap, jitter time.Duration, gossipK int, perRun time.Duration) *fleet.Result {
	cfg := fleetCfg(n, swap, jitter)
	cfg.Apps = fleet.MultiApps(k)
	ctx, cancel := context.WithTimeout(context.Background(), perRun)
	defer cancel()
	r, err := fleet.Run(ctx, fleet.Options{Bin: server, Fleet: cfg, GossipAgents: gossipK,
		Ramp: time.Duration(n) * time.Second / 500, Settle: 5 * time.Second,
		Multi:           &fleet.MultiOptions{Apps: k, MaxSize: "25%", Timeout: perRun},
		RegisterTimeout: 2*time.Minute + time.Duration(n)*20*time.Millisecond, Log: os.Stderr})
	if err != nil {
		res.Errors["multi-release"] = err.Error()
		fmt.Fprintf(os.Stderr, "benchsuite: many releases: %v\n", err)
		return nil
	}
	return r
}

// runRegions is the regions part: one regional cluster alone, then one
// per region side by side, n agents and one release each.
func runRegions(res *Results, server string, regions []string, n int, swap, jitter time.Duration, gossipK int, perRun time.Duration) *fleet.RegionsResult {
	ctx, cancel := context.WithTimeout(context.Background(), 2*perRun)
	defer cancel()
	r, err := fleet.RunRegions(ctx, fleet.Options{Bin: server, Fleet: fleetCfg(n, swap, jitter), GossipAgents: gossipK,
		Ramp: time.Duration(n) * time.Second / 500, Settle: 5 * time.Second, Rollout: true, MaxSize: "25%",
		RolloutTimeout: perRun, RegisterTimeout: 2*time.Minute + time.Duration(n)*20*time.Millisecond, Log: os.Stderr},
		regions, time.Minute)
	if err != nil {
		res.Errors["regions"] = err.Error()
		fmt.Fprintf(os.Stderr, "benchsuite: regions: %v\n", err)
		if r == nil || r.Alone == nil {
			return nil
		}
	}
	return r
}

func fleetCfg(n int, swap, jitter time.Duration) fleet.FleetConfig {
	return fleet.FleetConfig{N: n, Cells: 10, Heartbeat: 2 * time.Second, SwapLatency: swap, SwapJitter: jitter,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: 15 * time.Second}
}

func save(dir string, r *Results) {
	b, _ := json.MarshalIndent(r, "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func table(w0 *os.File, r *Results) {
	m := r.Machine
	fmt.Fprintf(w0, "\nrollwave bench — %d cores (%s), %d MiB, Linux %s, %s\n\n", m.NProc, m.CPU, m.MemMiB, m.Kernel, m.Go)
	w := tabwriter.NewWriter(w0, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tVALUE\tTARGET\t")
	for _, f := range r.Fleet {
		p := fmt.Sprintf("fleet N=%d:", f.N)
		fmt.Fprintf(w, "%s register all agents\t%.1f s\t\t\n", p, f.RegisterSeconds)
		fmt.Fprintf(w, "%s heartbeats handled\t%.0f /s (sent %.0f /s)\t\t\n", p, f.HeartbeatsPerSec, f.HeartbeatsSentPS)
		if ro := f.Rollout; ro != nil {
			t := ""
			if f.N == 1000 {
				t = verdict(ro.PhaseOverhead.P50 <= 100 && ro.PhaseOverhead.P99 <= 500)
			}
			fmt.Fprintf(w, "%s phase overhead p50/p99/max (%d phases)\t%.0f / %.0f / %.0f ms\tp50 ≤ 100, p99 ≤ 500 ms at 1,000 %s\t\n", p, len(ro.Phases), ro.PhaseOverhead.P50, ro.PhaseOverhead.P99, ro.PhaseOverhead.Max, t)
			fmt.Fprintf(w, "%s decision → last ack p50/p99/max\t%.0f / %.0f / %.0f ms\t\t\n", p, ro.PhaseLastAck.P50, ro.PhaseLastAck.P99, ro.PhaseLastAck.Max)
			fmt.Fprintf(w, "%s decision → order, all hosts p50/p99/max\t%.0f / %.0f / %.0f ms\t\t\n", p, ro.OrderLatency.P50, ro.OrderLatency.P99, ro.OrderLatency.Max)
			fmt.Fprintf(w, "%s total rollout (%s)\t%.1f s\t\t\n", p, strings.TrimPrefix(ro.State, "RELEASE_STATE_"), ro.TotalSeconds)
			fmt.Fprintf(w, "%s raft entries / bytes, rollout\t%d / %.0f KiB\t\t\n", p, f.Raft.RolloutEntries, float64(f.Raft.RolloutBytes)/1024)
		}
		fmt.Fprintf(w, "%s raft entries / bytes, registration\t%d / %.0f KiB\t\t\n", p, f.Raft.RegisterEntries, float64(f.Raft.RegisterBytes)/1024)
		for _, c := range f.Coordinators {
			role := "follower"
			if c.Leader {
				role = "leader"
			}
			fmt.Fprintf(w, "%s %s (%s) peak RSS / heap / CPU\t%.1f MiB / %.1f MiB / %.1f s (idle %.1f%%)\t\t\n", p, c.Name, role, c.PeakRSSMiB, c.PeakHeapMiB, c.CPUSeconds, c.IdleCPUPct)
		}
		memVerdict, heapVerdict := "(judged at N ≥ 1,000)", "(judged at N ≥ 1,000)"
		if f.N >= 1000 {
			memVerdict, heapVerdict = verdict(f.LeaderPeakMiBPer1k <= 64), verdict(f.LeaderPeakHeapMiBPer1k <= 64)
		}
		fmt.Fprintf(w, "%s leader RSS per 1,000 agents (peak; marginal)\t%.1f ; %.1f MiB\t≤ 64 MiB %s\t\n", p, f.LeaderPeakMiBPer1k, f.LeaderMarginalMiBPer1k, memVerdict)
		fmt.Fprintf(w, "%s leader Go heap in use per 1,000 agents (peak)\t%.1f MiB\t≤ 64 MiB %s\t\n", p, f.LeaderPeakHeapMiBPer1k, heapVerdict)
		fmt.Fprintf(w, "%s elections after bootstrap / leader changes\t%d / %d\t0 %s\t\n", p, f.Elections, f.LeaderChanges, verdict(f.Elections == 0 && f.LeaderChanges == 0))
		fmt.Fprintf(w, "%s simulator CPU / share of all CPU / peak RSS\t%.1f s / %.0f %% / %.0f MiB\t\t\n", p, f.SimCPUSeconds, 100*f.SimCPUShare, f.SimPeakRSSMiB)
	}
	if k := r.Kill; k != nil && k.Kill != nil {
		kk := k.Kill
		fmt.Fprintf(w, "leader SIGKILL → progress recorded (N=%d, %d/%d rounds) p50/p99/max\t%.2f / %.2f / %.2f s\tp99 ≤ 3 s %s\t\n", k.N, len(kk.Seconds), kk.Rounds, kk.P50, kk.P99, kk.Max, verdict(kk.P99 <= 3 && kk.Failed == 0))
	}
	tableMulti(w, r.Multi)
	tableRegions(w, r.Regions)
	if f := r.Footprint; f != nil {
		fmt.Fprintf(w, "agent idle RSS (anon + file-backed)\t%.1f MiB (%.1f + %.1f)\t≤ 20 MiB %s\t\n", f.IdleRSSMiB, f.IdleAnonMiB, f.IdleFileMiB, verdict(f.IdleRSSMiB <= 20))
		fmt.Fprintf(w, "agent idle PSS (anon + file-backed)\t%.1f MiB (%.1f + %.1f)\t\t\n", f.IdlePSSMiB, f.IdlePSSAnonMiB, f.IdlePSSFileMiB)
		fmt.Fprintf(w, "agent idle CPU over %.0f s\t%.2f %%\t≤ 0.5 %% %s\t\n", f.WindowSeconds, f.IdleCPUPct, verdict(f.IdleCPUPct <= 0.5))
		if f.SwapError == "" {
			fmt.Fprintf(w, "agent swap: peak RSS / CPU / time\t%.1f MiB / %.2f s / %.1f s\t\t\n", f.SwapPeakMiB, f.SwapCPUSeconds, f.SwapSeconds)
			fmt.Fprintf(w, "agent RSS %s after the swap (anon + file-backed)\t%.1f MiB (%.1f + %.1f)\t\t\n", footprint.AfterSwapSettle, f.AfterSwapRSSMiB, f.AfterSwapAnonMiB, f.AfterSwapFileMiB)
			fmt.Fprintf(w, "agent PSS %s after the swap\t%.1f MiB\t\t\n", footprint.AfterSwapSettle, f.AfterSwapPSSMiB)
		} else {
			fmt.Fprintf(w, "agent swap\tnot measured: %s\t\t\n", f.SwapError)
		}
	}
	if rh := r.RealHost; rh != nil {
		realHostRows(w, rh)
	}
	for _, g := range r.Gossip {
		gossipbench.TableRows(w, g)
	}
	w.Flush()
	if len(r.Fleet) > 1 {
		fmt.Fprintln(w0, "\nScaling:")
		w = tabwriter.NewWriter(w0, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "N\tregister s\thb/s\toverhead p50/p99 ms\tlast ack p50/p99 ms\trollout s\tleader peak MiB\tMiB/1k\theap MiB/1k\telections\tsim CPU %\t")
		for _, f := range r.Fleet {
			var o, a fleet.Dist
			tot := 0.0
			if f.Rollout != nil {
				o, a, tot = f.Rollout.PhaseOverhead, f.Rollout.PhaseLastAck, f.Rollout.TotalSeconds
			}
			peak := 0.0
			for _, c := range f.Coordinators {
				if c.Leader {
					peak = c.PeakRSSMiB
				}
			}
			fmt.Fprintf(w, "%d\t%.1f\t%.0f\t%.0f / %.0f\t%.0f / %.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.0f\t\n", f.N, f.RegisterSeconds, f.HeartbeatsPerSec, o.P50, o.P99, a.P50, a.P99, tot, peak, f.LeaderPeakMiBPer1k, f.LeaderPeakHeapMiBPer1k, f.Elections, 100*f.SimCPUShare)
		}
		w.Flush()
	}
	for k, v := range r.Missed {
		fmt.Fprintf(w0, "NOT MEASURED %s: %s\n", k, v)
	}
	for k, v := range r.Errors {
		fmt.Fprintf(w0, "ERROR %s: %s\n", k, v)
	}
}

// leaderOf is the coordinator that led at the end of a run.
func leaderOf(f *fleet.Result) fleet.CoordUsage {
	for _, c := range f.Coordinators {
		if c.Leader {
			return c
		}
	}
	return fleet.CoordUsage{}
}

func tableMulti(w io.Writer, f *fleet.Result) {
	if f == nil || f.Multi == nil {
		return
	}
	m := f.Multi
	p := fmt.Sprintf("%d releases at once (N=%d, every agent hosts every app):", m.Apps, f.N)
	fmt.Fprintf(w, "%s succeeded\t%d / %d\t\t\n", p, m.Succeeded, m.Apps)
	fmt.Fprintf(w, "%s one alone / all at once, total\t%.1f s / %.1f s (%.1f×)\t\t\n", p, m.Solo.TotalSeconds, m.Window.WallSeconds, m.Window.WallSeconds/m.Solo.TotalSeconds)
	fmt.Fprintf(w, "%s each release against the one alone, median / max\t%.2f× / %.2f×\tno release > 2× %s\t\n", p, m.MedianSlowdown, m.MaxSlowdown, verdict(m.MaxSlowdown <= 2 && m.Succeeded == m.Apps))
	fmt.Fprintf(w, "%s phase overhead p50/p99/max, one alone\t%.0f / %.0f / %.0f ms\t\t\n", p, m.Solo.PhaseOverhead.P50, m.Solo.PhaseOverhead.P99, m.Solo.PhaseOverhead.Max)
	fmt.Fprintf(w, "%s phase overhead p50/p99/max, all at once (%d phases)\t%.0f / %.0f / %.0f ms\t\t\n", p, m.PhaseOverhead.N, m.PhaseOverhead.P50, m.PhaseOverhead.P99, m.PhaseOverhead.Max)
	fmt.Fprintf(w, "%s leader CPU, one alone / all at once\t%.1f s (%.0f%%) / %.1f s (%.0f%% of a core)\t\t\n", p, m.SoloWindow.LeaderCPUSeconds, m.SoloWindow.LeaderCPUPercent, m.Window.LeaderCPUSeconds, m.Window.LeaderCPUPercent)
	fmt.Fprintf(w, "%s raft entries/s (KiB), one alone / all at once\t%.0f (%.0f) / %.0f (%.0f)\t\t\n", p, m.SoloWindow.RaftEntriesPerSec, float64(m.SoloWindow.RaftBytes)/1024, m.Window.RaftEntriesPerSec, float64(m.Window.RaftBytes)/1024)
	fmt.Fprintf(w, "%s leader peak RSS; elections / leader changes\t%.1f MiB; %d / %d\t0 %s\t\n", p, leaderOf(f).PeakRSSMiB, f.Elections, f.LeaderChanges, verdict(f.Elections == 0 && f.LeaderChanges == 0))
	if m.DroppedReports > 0 {
		fmt.Fprintf(w, "%s reports the simulator dropped\t%d\t0\t\n", p, m.DroppedReports)
	}
}

func tableRegions(w io.Writer, rr *fleet.RegionsResult) {
	if rr == nil {
		return
	}
	row := func(label string, f *fleet.Result) {
		if f == nil {
			fmt.Fprintf(w, "%s\tno result\t\t\n", label)
			return
		}
		p := fmt.Sprintf("%s (N=%d):", label, f.N)
		if ro := f.Rollout; ro != nil {
			t := ""
			if f.N == 1000 {
				t = "p50 ≤ 100, p99 ≤ 500 ms " + verdict(ro.PhaseOverhead.P50 <= 100 && ro.PhaseOverhead.P99 <= 500 && ro.State == "RELEASE_STATE_SUCCEEDED")
			}
			fmt.Fprintf(w, "%s phase overhead p50/p99/max; rollout (%s)\t%.0f / %.0f / %.0f ms; %.1f s\t%s\t\n", p,
				strings.TrimPrefix(ro.State, "RELEASE_STATE_"), ro.PhaseOverhead.P50, ro.PhaseOverhead.P99, ro.PhaseOverhead.Max, ro.TotalSeconds, t)
		}
		l := leaderOf(f)
		fmt.Fprintf(w, "%s leader peak RSS / CPU; elections / leader changes\t%.1f MiB / %.1f s; %d / %d\t0 %s\t\n", p, l.PeakRSSMiB, l.CPUSeconds,
			f.Elections, f.LeaderChanges, verdict(f.Elections == 0 && f.LeaderChanges == 0))
	}
	if rr.Alone != nil {
		row(fmt.Sprintf("region %s, one cluster alone", rr.Alone.Region), rr.Alone)
	}
	for _, f := range rr.Side {
		if f != nil {
			row(fmt.Sprintf("region %s, %d clusters side by side", f.Region, len(rr.Side)), f)
		}
	}
	if len(rr.Side) > 0 {
		fmt.Fprintf(w, "%d regional clusters side by side: releases started together; simulator CPU\t%v; %.1f s\t\t\n", len(rr.Side), rr.SideAligned, rr.SimCPUSeconds)
	}
}

// realHostRows are the table's rows of the real-host part.
func realHostRows(w io.Writer, rh *realhost.Result) {
	p := fmt.Sprintf("real hosts (%d, %d cells):", rh.Hosts, rh.Cells)
	judge := func(ratio float64) string {
		if rh.Hosts < 50 {
			return "(judged at 50 hosts)"
		}
		return verdict(ratio >= 5)
	}
	if len(rh.Rounds) > 0 {
		fmt.Fprintf(w, "%s rollout, phases %v: rollwave (median of %d)\t%.2f s\t\t\n", p, rh.Phases, len(rh.Rounds), rh.RollwaveMedian)
		fmt.Fprintf(w, "%s same phases, Ansible serial (median of %d)\t%.2f s\t\t\n", p, len(rh.Rounds), rh.AnsibleMedian)
		fmt.Fprintf(w, "%s rollwave faster than Ansible serial\t%.1f×\t≥ 5× at 50 hosts %s\t\n", p, rh.Ratio, judge(rh.Ratio))
		if rh.AnsibleFreeMedian > 0 {
			fmt.Fprintf(w, "%s same phases, Ansible serial + strategy free (median of %d)\t%.2f s (rollwave %.1f× faster)\t≥ 5× %s\t\n", p, len(rh.Rounds), rh.AnsibleFreeMedian, rh.FreeRatio, judge(rh.FreeRatio))
		}
	}
	if rb := rh.Rollback; rb != nil {
		fmt.Fprintf(w, "%s rollback of every host → all on the old version: rollwave / Ansible\t%.2f s / %.2f s (%.1f×)\t\t\n", p, rb.RollwaveSeconds, rb.AnsibleSeconds, rb.Ratio)
	}
	if bh := rh.BadHost; bh != nil {
		fmt.Fprintf(w, "%s one bad host (phase %d): detected, rollwave / Ansible\t%.2f s / %.2f s\t\t\n", p, bh.Phase, bh.RollwaveDetectSeconds, bh.AnsibleDetectSeconds)
		fmt.Fprintf(w, "%s one bad host: every host on the old version, rollwave / Ansible\t%.2f s / %.2f s\t\t\n", p, bh.RollwaveOldSeconds, bh.AnsibleOldSeconds)
	}
	if b := rh.Blast; b != nil {
		for i, run := range b.Runs {
			target := ""
			if i == 0 {
				target = "≤ 0.1 % " + verdict(run.FailedPct <= 0.1 && run.Requests > 0)
			}
			det := "never"
			if run.DetectSeconds >= 0 {
				det = fmt.Sprintf("%.1f s", run.DetectSeconds)
			}
			fmt.Fprintf(w, "blast radius (%d hosts, %.0f req/s each, 10 %% bad): %s: requests failed; detected\t%.3f %% (%d of %d); %s\t%s\t\n",
				b.Hosts, b.RateHost, run.Name, run.FailedPct, run.Failed5xx+run.FailedNoAnswer, run.Requests, det, target)
		}
	}
	if iso := rh.Isolation; iso != nil {
		fmt.Fprintf(w, "%s isolation: cut → old version p50/max (%d hosts, %d missed)\t%.2f / %.2f s\t≤ isolation_timeout %.0f s + 2 s %s\t\n",
			p, len(iso.Seconds), iso.Missed, iso.P50, iso.Max, iso.TimeoutSeconds, verdict(iso.Missed == 0 && len(iso.Seconds) > 0 && iso.Max <= iso.TimeoutSeconds+2))
	}
}
