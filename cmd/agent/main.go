// Command rollwave-agent runs on every host: it joins the gossip pool, keeps
// a session with the coordinator leader and runs assignments on the host's
// blue/green slots.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	// Freeze calendars name IANA zones; hosts without /usr/share/zoneinfo
	// (minimal images) still resolve them (~450 KB of binary).
	_ "time/tzdata"

	"github.com/rollwave/rollwave/internal/agent"
	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/deploy/slot/systemd"
	"github.com/rollwave/rollwave/internal/spec/speccore"
	"github.com/rollwave/rollwave/internal/tlsutil"
	"github.com/rollwave/rollwave/internal/version"
)

func main() {
	// The agent idles on every host: a tighter GC target keeps its
	// resident memory under 20 MiB for a few hundredths of a percent of
	// CPU (docs/performance.md). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// run returns the exit code: 0 ok, 1 error, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollwave-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile  = fs.String("config", "", "agent config file (HCL, or JSON when it ends in .json)")
		node        = fs.String("node", "", "host id (default: hostname)")
		cell        = fs.String("cell", "", "the host's cell (required here or in the config)")
		region      = fs.String("region", "", "region (default \"global\")")
		dataDir     = fs.String("data-dir", "", "slot state and directories (default /var/lib/rollwave-agent)")
		driver      = fs.String("unit-driver", "", "systemd (default) or process")
		heartbeat   = fs.Duration("heartbeat-interval", 0, "how often to report to the leader (default 2s)")
		gossipAddr  = fs.String("gossip-addr", "", "gossip listen address (default 0.0.0.0:7423)")
		httpAddr    = fs.String("http-addr", "", "HTTP listen address for /metrics, /v1/health, /v1/ready and pprof; \"off\" for none (default "+speccore.DefaultAgentHTTPAddr+")")
		enablePprof = fs.Bool("enable-pprof", false, "serve pprof on the HTTP address (agents have no ACL tokens; with TLS a cluster client certificate is still needed)")
		advGossip   = fs.String("advertise-gossip", "", "gossip address others dial (default: the bound one)")
		logLevel    = fs.String("log-level", "", "debug, info, warn or error")
		showVer     = fs.Bool("version", false, "print the version and exit")
		encrypt     = fs.String("encrypt", "", "gossip encryption key (base64, from 'rollwave keygen'); visible in ps: prefer -encrypt-file or env "+speccore.EnvEncrypt)
		encryptFile = fs.String("encrypt-file", "", "file holding the gossip encryption key (env "+speccore.EnvEncryptFile+", config encrypt_file)")
		caFile      = fs.String("ca-file", "", "CA certificate: turns on mutual TLS with -cert-file and -key-file")
		certFile    = fs.String("cert-file", "", "this agent's certificate ('rollwave tls cert create -agent')")
		keyFile     = fs.String("key-file", "", "this agent's certificate key")
		joinTimeout = fs.Duration("join-timeout", 30*time.Second, "how long to try the join addresses at start before giving up")
		portOffset  = fs.Int("port-offset", 0, "add this to every release port (only to run several agents on one machine, as the demo does)")
		joins       stringList
		labels      stringList
	)
	fs.Var(&joins, "join", "gossip address (host:port) of a coordinator; repeatable")
	fs.Var(&labels, "label", "host label key=value; repeatable")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rollwave-agent [flags]\n\nRuns the rollwave agent on this host. Settings: defaults, then -config, then flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Error: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *showVer {
		fmt.Fprintln(stdout, "rollwave-agent", version.Version)
		return 0
	}

	ac := speccore.DefaultAgentConfig()
	if *configFile != "" {
		src, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "Error: read config file: %v\n", err)
			return 1
		}
		parsed, err := speccore.ParseAgentConfig(*configFile, src)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
		ac = parsed
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["node"] {
		ac.NodeName = *node
	}
	if set["cell"] {
		ac.Cell = *cell
	}
	if set["region"] {
		ac.Region = *region
	}
	if set["data-dir"] {
		ac.DataDir = *dataDir
	}
	if set["unit-driver"] {
		ac.UnitDriver = *driver
	}
	if set["heartbeat-interval"] {
		ac.HeartbeatInterval = *heartbeat
	}
	if set["gossip-addr"] {
		ac.Addresses.Gossip = *gossipAddr
	}
	if set["http-addr"] {
		ac.HTTPAddr = *httpAddr
	}
	if set["enable-pprof"] {
		ac.EnablePprof = *enablePprof
	}
	if set["advertise-gossip"] {
		ac.Advertise.Gossip = *advGossip
	}
	if set["log-level"] {
		ac.LogLevel = *logLevel
	}
	if set["ca-file"] {
		ac.TLS.CAFile = *caFile
	}
	if set["cert-file"] {
		ac.TLS.CertFile = *certFile
	}
	if set["key-file"] {
		ac.TLS.KeyFile = *keyFile
	}
	if set["join"] {
		ac.Join = joins
	}
	if set["label"] {
		ac.Labels = map[string]string{}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				fmt.Fprintf(stderr, "Error: -label %q must be key=value\n", l)
				return 2
			}
			ac.Labels[k] = v
		}
	}
	if ac.DataDir != "" && !filepath.IsAbs(ac.DataDir) {
		if abs, err := filepath.Abs(ac.DataDir); err == nil {
			ac.DataDir = abs
		}
	}
	keyFrom, err := speccore.ResolveGossipKey(&ac.Encrypt, &ac.EncryptFile, *encrypt, *encryptFile)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	if err := ac.Validate(); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	log := newLogger(ac.LogLevel, stderr)
	if keyFrom == "-encrypt" {
		log.Warn("the gossip key was given with -encrypt, which every local user can read in ps; use -encrypt-file, " +
			speccore.EnvEncrypt + " or encrypt_file in the config file")
	}
	if err := os.MkdirAll(ac.DataDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "Error: create data dir: %v\n", err)
		return 1
	}

	drv, err := newDriver(ac.UnitDriver, ac.Policy.UnitHardening, log)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	defer drv.Close()

	cfg := agent.DefaultConfig()
	cfg.NodeName, cfg.Cell, cfg.Region, cfg.Labels = ac.NodeName, ac.Cell, ac.Region, ac.Labels
	cfg.DataDir, cfg.Join = ac.DataDir, ac.Join
	cfg.GossipAddr, cfg.AdvertiseGossip = ac.Addresses.Gossip, ac.Advertise.Gossip
	cfg.HTTPAddr, cfg.EnablePprof = ac.HTTPAddr, ac.EnablePprof
	cfg.HeartbeatInterval = ac.HeartbeatInterval
	cfg.Driver = drv
	cfg.PortOffset = *portOffset
	cfg.JoinTimeout = *joinTimeout
	cfg.GossipKey = speccore.GossipKeyBytes(ac.Encrypt)
	cfg.Policy = agent.PolicyFromConfig(ac.Policy)
	cfg.Limits = slot.Limits{MaxDownloadBytes: ac.Limits.MaxArtifactDownload, MaxUnpackedBytes: ac.Limits.MaxArtifactUnpacked}
	if ac.TLS.Enabled() {
		tc := tlsutil.DefaultConfig()
		tc.CAFile, tc.CertFile, tc.KeyFile = ac.TLS.CAFile, ac.TLS.CertFile, ac.TLS.KeyFile
		tc.VerifyServerHostname = ac.TLS.VerifyServerHostname
		tc.Region = ac.Region
		if ac.TLS.Region != "" {
			// The certificates' region, when the host's own region
			// (placement for parallel regions) differs from it.
			tc.Region = ac.TLS.Region
		}
		cfg.TLS = &tc
	}
	cfg.Version = version.Version
	cfg.Logger = log
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	hupDone := make(chan struct{})
	defer close(hupDone) // signal.Stop does not close hup: end the reader
	go func() {
		for {
			select {
			case <-hupDone:
				return
			case <-hup:
			}
			if err := a.ReloadTLS(); err != nil {
				log.Error("reload TLS certificates; keeping the old ones", "error", err)
			} else {
				log.Info("TLS certificates reloaded")
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

func newDriver(name string, hardening []string, log *slog.Logger) (slot.Driver, error) {
	switch name {
	case "", speccore.DriverSystemd:
		c := systemd.DefaultConfig()
		c.Logger = log
		c.Hardening = systemd.DefaultHardening
		if hardening != nil {
			c.Hardening = systemd.Hardening(hardening)
		}
		if err := c.Hardening.Validate(); err != nil {
			return nil, fmt.Errorf("policy.unit_hardening: %w", err)
		}
		d, err := systemd.New(c)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Connect(ctx); err != nil {
			return nil, fmt.Errorf("unit_driver systemd: cannot reach systemd over D-Bus (%v); on a host without systemd use -unit-driver process", err)
		}
		return d, nil
	case speccore.DriverProcess:
		return slot.NewProcessDriver(slot.ProcessConfig{Logger: log})
	}
	return nil, fmt.Errorf("unit_driver must be systemd or process, got %q", name)
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
