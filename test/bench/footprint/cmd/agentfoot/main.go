// Command agentfoot measures the rollwave-agent's footprint: idle RSS, PSS
// and CPU over -window with default heartbeats against a -dev server, and the
// peak during a swap of the demo app. JSON on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rollwave/rollwave/test/bench/footprint"
)

func main() {
	var (
		server = flag.String("server-bin", "bin/rollwave", "the rollwave binary")
		agent  = flag.String("agent-bin", "bin/rollwave-agent", "the rollwave-agent binary")
		window = flag.Duration("window", 60*time.Second, "idle measurement window")
		warmup = flag.Duration("warmup", 5*time.Second, "wait after the session opens before measuring")
		swap   = flag.Bool("swap", true, "also roll the demo app out to the agent and record the peak")
		env    = flag.String("env", "", "extra agent environment, space separated (e.g. \"GOGC=50 GOMEMLIMIT=8MiB\")")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *window+*warmup+5*time.Minute)
	defer cancel()
	res, err := footprint.Run(ctx, footprint.Options{ServerBin: *server, AgentBin: *agent, Window: *window, Warmup: *warmup,
		Swap: *swap, Env: strings.Fields(*env), Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentfoot:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
}
