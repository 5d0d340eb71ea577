package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/notify"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/tlsutil"
	"github.com/rollwave/rollwave/internal/version"
)

// leaveTimeout bounds the graceful part of a SIGTERM stop.
const leaveTimeout = 15 * time.Second

type serverFlags struct {
	configFile      string
	nodeName        string
	region          string
	dataDir         string
	dev             bool
	bootstrapExpect int
	join            []string
	grpcAddr        string
	raftAddr        string
	gossipAddr      string
	httpAddr        string
	enablePprof     bool
	advGRPC         string
	advRaft         string
	advGossip       string
	logLevel        string
	encrypt         string
	encryptFile     string
	caFile          string
	certFile        string
	keyFile         string
	aclEnabled      bool
}

func newServerCommand() *cobra.Command { return newServerCommandWith(&serverFlags{}) }

// newServerCommandWith binds the command's flags to f (tests read f back).
func newServerCommandWith(f *serverFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a coordinator server",
		Long: `Run a rollwave coordinator: a raft voter holding the release state,
serving the operator API and agent sessions on its gRPC address.

Settings come from defaults, then the -config file (HCL or JSON), then the
flags given on the command line. Three servers started with
-bootstrap-expect 3 that can reach each other through -join form a cluster.
-dev runs a single in-memory server for demos; nothing survives a restart.

SIGTERM or SIGINT leaves the cluster gracefully (leadership is handed over
first); a second signal stops at once.`,
		Example: `  rollwave server -dev
  rollwave server -config /etc/rollwave/server.hcl
  rollwave server -node c1 -data-dir /var/lib/rollwave -bootstrap-expect 3 \
      -grpc-addr 10.0.0.1:7420 -raft-addr 10.0.0.1:7421 -gossip-addr 10.0.0.1:7422 \
      -join 10.0.0.2:7422 -join 10.0.0.3:7422`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd.Flags())
			if err != nil {
				return err
			}
			return runServer(cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", "", "server config file (HCL, or JSON when it ends in .json)")
	fl.StringVar(&f.nodeName, "node", "", "node name, unique in the cluster (default: hostname)")
	fl.StringVar(&f.region, "region", "", "region advertised in gossip (default \"global\")")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the raft log, stable store and snapshots")
	fl.BoolVar(&f.dev, "dev", false, "run a single in-memory server (demos; no persistence)")
	fl.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "bootstrap a new cluster once this many servers are seen in gossip")
	fl.StringArrayVar(&f.join, "join", nil, "gossip address (host:port) of a server to join; repeatable")
	fl.StringVar(&f.grpcAddr, "grpc-addr", "", "gRPC listen address for operators and agents (default 127.0.0.1:7420)")
	fl.StringVar(&f.raftAddr, "raft-addr", "", "raft listen address (default 127.0.0.1:7421)")
	fl.StringVar(&f.gossipAddr, "gossip-addr", "", "gossip listen address, TCP and UDP (default 127.0.0.1:7422)")
	fl.StringVar(&f.httpAddr, "http-addr", "", "HTTP listen address for /metrics, /v1/health, /v1/ready and pprof; \"off\" for none (default "+spec.DefaultServerHTTPAddr+")")
	fl.BoolVar(&f.enablePprof, "enable-pprof", false, "serve pprof on the HTTP address without a token when ACLs are off (with ACLs, an admin token is needed)")
	fl.StringVar(&f.advGRPC, "advertise-grpc", "", "gRPC address other nodes should dial (default: the bound one)")
	fl.StringVar(&f.advRaft, "advertise-raft", "", "raft address other servers should dial (default: the bound one)")
	fl.StringVar(&f.advGossip, "advertise-gossip", "", "gossip address other nodes should dial (default: the bound one)")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	fl.StringVar(&f.encrypt, "encrypt", "", "gossip encryption key (base64, from 'rollwave keygen'); visible in ps: prefer -encrypt-file or env "+spec.EnvEncrypt)
	fl.StringVar(&f.encryptFile, "encrypt-file", "", "file holding the gossip encryption key (env "+spec.EnvEncryptFile+", config encrypt_file)")
	fl.StringVar(&f.caFile, "ca-file", "", "CA certificate: turns on mutual TLS with -cert-file and -key-file")
	fl.StringVar(&f.certFile, "cert-file", "", "this server's certificate ('rollwave tls cert create -server')")
	fl.StringVar(&f.keyFile, "key-file", "", "this server's certificate key")
	fl.BoolVar(&f.aclEnabled, "acl-enabled", false, "require operator ACL tokens (acl { enabled = true }); bootstrap with 'rollwave acl bootstrap'")
	return cmd
}

// config layers defaults, the config file and the flags that were set.
func (f *serverFlags) config(fl *pflag.FlagSet) (coordinator.Config, error) {
	sc := spec.DefaultServerConfig()
	if f.configFile != "" {
		src, err := os.ReadFile(f.configFile)
		if err != nil {
			return coordinator.Config{}, fmt.Errorf("read config file: %w", err)
		}
		parsed, err := spec.ParseServerConfig(f.configFile, src)
		if err != nil {
			return coordinator.Config{}, err
		}
		sc = parsed
	}
	set := func(name string, apply func()) {
		if fl.Changed(name) {
			apply()
		}
	}
	set("node", func() { sc.NodeName = f.nodeName })
	set("region", func() { sc.Region = f.region })
	set("data-dir", func() { sc.DataDir = f.dataDir })
	set("dev", func() { sc.Dev = f.dev })
	set("bootstrap-expect", func() { sc.BootstrapExpect = f.bootstrapExpect })
	set("join", func() { sc.Join = f.join })
	set("grpc-addr", func() { sc.Addresses.GRPC = f.grpcAddr })
	set("raft-addr", func() { sc.Addresses.Raft = f.raftAddr })
	set("gossip-addr", func() { sc.Addresses.Gossip = f.gossipAddr })
	set("http-addr", func() { sc.HTTPAddr = f.httpAddr })
	set("enable-pprof", func() { sc.EnablePprof = f.enablePprof })
	set("advertise-grpc", func() { sc.Advertise.GRPC = f.advGRPC })
	set("advertise-raft", func() { sc.Advertise.Raft = f.advRaft })
	set("advertise-gossip", func() { sc.Advertise.Gossip = f.advGossip })
	set("log-level", func() { sc.LogLevel = f.logLevel })
	set("ca-file", func() { sc.TLS.CAFile = f.caFile })
	set("cert-file", func() { sc.TLS.CertFile = f.certFile })
	set("key-file", func() { sc.TLS.KeyFile = f.keyFile })
	set("acl-enabled", func() { sc.ACL.Enabled = f.aclEnabled })
	keyFrom, err := spec.ResolveGossipKey(&sc.Encrypt, &sc.EncryptFile, f.encrypt, f.encryptFile)
	if err != nil {
		return coordinator.Config{}, err
	}
	if err := sc.Validate(); err != nil {
		return coordinator.Config{}, err
	}

	cfg := coordinator.DefaultConfig()
	cfg.NodeID = sc.NodeName
	cfg.Region = sc.Region
	cfg.DataDir = sc.DataDir
	cfg.Dev = sc.Dev
	cfg.BootstrapExpect = sc.BootstrapExpect
	cfg.Join = sc.Join
	cfg.GRPCAddr, cfg.RaftAddr, cfg.GossipAddr = sc.Addresses.GRPC, sc.Addresses.Raft, sc.Addresses.Gossip
	cfg.AdvertiseGRPC, cfg.AdvertiseRaft, cfg.AdvertiseGossip = sc.Advertise.GRPC, sc.Advertise.Raft, sc.Advertise.Gossip
	cfg.HTTPAddr, cfg.EnablePprof = sc.HTTPAddr, sc.EnablePprof
	cfg.HeartbeatTimeout = sc.Raft.HeartbeatTimeout
	cfg.ElectionTimeout = sc.Raft.ElectionTimeout
	cfg.LeaderLeaseTimeout = sc.Raft.LeaderLeaseTimeout
	cfg.CommitTimeout = sc.Raft.CommitTimeout
	cfg.SnapshotInterval = sc.Raft.SnapshotInterval
	cfg.SnapshotThreshold = sc.Raft.SnapshotThreshold
	cfg.TrailingLogs = sc.Raft.TrailingLogs
	cfg.FastFailover = sc.Raft.FastFailover
	cfg.Version = version.Version
	cfg.Logger = newLogger(sc.LogLevel)
	cfg.GossipKey = spec.GossipKeyBytes(sc.Encrypt)
	if keyFrom == "-encrypt" {
		cfg.Logger.Warn("the gossip key was given with -encrypt, which every local user can read in ps; use -encrypt-file, " +
			spec.EnvEncrypt + " or encrypt_file in the config file")
	}
	cfg.ACLEnabled = sc.ACL.Enabled
	cfg.GateCredentialsDir = sc.GateCredentialsDir
	if cfg.GateURLPrefixes, err = spec.ParseArtifactPrefixes(sc.GateURLPrefixes); err != nil {
		return coordinator.Config{}, err // Validate reported it already
	}
	cfg.Retention.ReleasesPerApp, cfg.Retention.Events = sc.Retention.ReleasesPerApp, sc.Retention.Events
	if cfg.Notify.Targets, err = notifyTargets(sc.Notify, cfg.Logger); err != nil {
		return coordinator.Config{}, err
	}
	cfg.Notify.UIURL = sc.UIURL
	cfg.Limits = coordinator.Limits{
		RPCMaxConnsPerClient: sc.Limits.RPCMaxConnsPerClient,
		RPCMaxConns:          sc.Limits.RPCMaxConns,
		RPCHandshakeTimeout:  sc.Limits.RPCHandshakeTimeout,
		RPCIdleTimeout:       sc.Limits.RPCIdleTimeout,
	}
	if sc.TLS.Enabled() {
		tc := tlsutil.DefaultConfig()
		tc.CAFile, tc.CertFile, tc.KeyFile = sc.TLS.CAFile, sc.TLS.CertFile, sc.TLS.KeyFile
		tc.VerifyServerHostname = sc.TLS.VerifyServerHostname
		tc.Region = sc.Region
		cfg.TLS = &tc
	}
	return cfg, cfg.Validate()
}

// notifyTargets turns the config's notify blocks into targets, reading
// each secret_file now (a missing or unreadable file stops the start,
// naming the block; the secret itself is never logged) and warning when
// others may read one.
func notifyTargets(blocks []spec.NotifyConfig, log *slog.Logger) ([]notify.Target, error) {
	var out []notify.Target
	for i, b := range blocks {
		t := notify.Target{Name: b.Name, Type: b.Type, URL: b.URL, Events: b.Events, Timeout: b.Timeout}
		if b.SecretFile != "" {
			secret, err := spec.ReadSecretFile(b.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("notify[%d] %q: secret_file: %w", i, b.Name, err)
			}
			if w := spec.SecretFileMode(b.SecretFile); w != "" {
				log.Warn("notify secret file is not private", "target", b.Name, "warning", w)
			}
			t.Secret = []byte(secret)
		}
		out = append(out, t)
	}
	return out, nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// defaultGOGC is the server's GC target unless GOGC is set. Most of the
// leader's heap is per-session gRPC state that lives as long as the
// session; a lower target trims the garbage allowed on top of it: ~10 MiB
// less peak RSS per 1,000 agents for a little more GC CPU
// (docs/performance.md). GOGC in the environment wins; GOMEMLIMIT works
// on top of either.
const defaultGOGC = 50

// applyDefaultGOGC sets defaultGOGC unless env (the GOGC variable) is set.
func applyDefaultGOGC(env string) {
	if env == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

func runServer(cfg coordinator.Config) error {
	log := cfg.Logger
	applyDefaultGOGC(os.Getenv("GOGC"))
	srv, err := coordinator.New(cfg)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var sig os.Signal
	for sig = range sigs {
		if sig != syscall.SIGHUP {
			break
		}
		// SIGHUP re-reads the TLS files; the cluster stays up.
		if err := srv.ReloadTLS(); err != nil {
			log.Error("reload TLS certificates; keeping the old ones", "error", err)
		} else {
			log.Info("TLS certificates reloaded")
		}
	}
	log.Info("signal received; leaving the cluster", "signal", sig.String())
	left := make(chan error, 1)
	go func() { left <- srv.Leave(leaveTimeout) }()
	select {
	case err := <-left:
		if err != nil {
			log.Warn("graceful leave incomplete", "error", err)
		}
	case sig := <-sigs:
		log.Warn("second signal; stopping now", "signal", sig.String())
	}
	return srv.Shutdown()
}
