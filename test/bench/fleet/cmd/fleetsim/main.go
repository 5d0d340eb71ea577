// Command fleetsim runs a 3-node rollwave coordinator cluster (real
// `rollwave server` processes on 127.0.0.1) and N simulated agents
// speaking the real session protocol, rolls a zero-bake release out across
// them, optionally kills the leader in rounds, and prints the measurements
// as JSON on stdout (progress on stderr).
//
//	go run ./test/bench/fleet/cmd/fleetsim -bin bin/rollwave -n 1000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rollwave/rollwave/test/bench/fleet"
)

func main() {
	var (
		bin     = flag.String("bin", "bin/rollwave", "the rollwave binary (make build)")
		n       = flag.Int("n", 200, "simulated agents")
		cells   = flag.Int("cells", 10, "cells the agents are spread over")
		hb      = flag.Duration("heartbeat", 2*time.Second, "agent heartbeat interval (the agent default is 2s)")
		swap    = flag.Duration("swap-latency", 200*time.Millisecond, "simulated unit-driver time from STAGING to SWITCHED")
		jitter  = flag.Duration("swap-jitter", 0, "uniform random extra swap time per host")
		ramp    = flag.Duration("ramp", 0, "spread the agents' first connections over this long (default n/500 s)")
		settle  = flag.Duration("settle", 10*time.Second, "idle window for heartbeats/s and idle CPU")
		rollout = flag.Bool("rollout", true, "roll a release out across the fleet")
		maxSize = flag.String("max-size", "25%", "phases.max_size of the release")
		gossipK = flag.Int("gossip-agents", 50, "how many simulated agents also join gossip (a sample; the rest rely on their session)")
		raftTO  = flag.Duration("raft-timeout", 0, "raft heartbeat and election timeout (default: the server's, 1s)")
		kills   = flag.Int("leader-kills", 0, "leader SIGKILL rounds (each with its own release)")
		timeout = flag.Duration("timeout", 15*time.Minute, "bound on the whole run")
		dir     = flag.String("dir", "", "work dir for data and logs (default: a temp dir, removed)")
		keep    = flag.Bool("keep", false, "keep the work dir")
		multiK  = flag.Int("multi-apps", 0, "after the rollout, one release alone then this many at once, one app each; every agent hosts every app (0: none)")
		regions = flag.String("regions", "", "comma-separated regions: run one cluster alone, then one per region side by side (JSON: the regions result)")
	)
	flag.Parse()
	if *ramp == 0 {
		*ramp = time.Duration(*n) * time.Second / 500
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := fleet.Options{
		Bin: *bin, Dir: *dir, KeepDir: *keep || *dir != "",
		Fleet: fleet.FleetConfig{N: *n, Cells: *cells, Heartbeat: *hb, SwapLatency: *swap, SwapJitter: *jitter,
			ReconnectMin: 200 * time.Millisecond, ReconnectMax: 15 * time.Second},
		GossipAgents: *gossipK, RaftTimeout: *raftTO, Ramp: *ramp, Settle: *settle, Rollout: *rollout, MaxSize: *maxSize, RolloutTimeout: *timeout,
		LeaderKills: *kills, RegisterTimeout: 2*time.Minute + time.Duration(*n)*20*time.Millisecond, Log: os.Stderr,
	}
	if *multiK > 0 {
		o.Fleet.Apps = fleet.MultiApps(*multiK)
		o.Multi = &fleet.MultiOptions{Apps: *multiK, MaxSize: *maxSize, Timeout: *timeout}
	}
	var res any
	var err error
	if rs := strings.FieldsFunc(*regions, func(r rune) bool { return r == ',' || r == ' ' }); len(rs) > 0 {
		res, err = fleet.RunRegions(ctx, o, rs, time.Minute)
	} else {
		res, err = fleet.Run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
}
