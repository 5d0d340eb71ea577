package spec

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// ServerConfig configures a coordinator (`rollwave server`). Its fields
// mirror the command's flags; a config file sets the same names.
type ServerConfig struct {
	// NodeName identifies this server in raft and gossip; default the host
	// name.
	NodeName string
	// Region groups servers and agents; default "global".
	Region string
	// DataDir holds raft's log, stable store and snapshots. Required unless
	// Dev.
	DataDir string
	// Dev runs a single in-memory server that bootstraps itself.
	Dev bool
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping the cluster; 0 means do not bootstrap (join an
	// existing cluster). Not allowed with Dev.
	BootstrapExpect int
	// Join lists other servers' gossip addresses (host:port).
	Join []string
	// LogLevel is debug, info (default), warn or error.
	LogLevel string
	// Addresses are the listen addresses. Port 0 picks a free port (tests).
	Addresses ServerAddresses
	// Advertise are the addresses peers dial, when they differ from
	// Addresses (NAT, 0.0.0.0 binds). Empty fields mean "use Addresses".
	Advertise ServerAddresses
	// Raft tunes hashicorp/raft.
	Raft RaftConfig
	// TLS turns on mutual TLS for every gRPC link.
	TLS TLSConfig
	// Encrypt is the gossip encryption key (base64, `rollwave keygen`);
	// empty means gossip in the clear.
	Encrypt string
	// EncryptFile names a file holding the gossip encryption key, so the
	// key need not sit in the config file (or on the command line);
	// exclusive with Encrypt. The command resolves it into Encrypt before
	// Validate checks the key (spec.PickSecret: flags, then the
	// environment, then the config file).
	EncryptFile string
	// ACL configures operator ACL tokens.
	ACL ACLConfig
	// Limits bound the connections clients may hold on the gRPC address.
	Limits LimitsConfig
	// GateCredentialsDir holds the files that release specs' external
	// gates name (bearer_token_file, password_file, ca_file): specs give
	// only a file name, so a release author can make the leader send
	// these files and no other. Empty: gates with credentials are
	// inconclusive. Absolute.
	GateCredentialsDir string
	// GateURLPrefixes, when set, are the only URLs (http/https prefixes,
	// as an agent's artifact_prefixes) that external gates may read: the
	// operators of the coordinators bound where a release author can make
	// the leader send requests. Empty allows any http(s) URL.
	GateURLPrefixes []string
	// HTTPAddr is the HTTP listener (/metrics, /v1/health, /v1/ready,
	// pprof), the config file's addresses.http; default
	// DefaultServerHTTPAddr, "" or "off" turns it off (http_config.go).
	HTTPAddr string
	// EnablePprof serves pprof on the HTTP listener without a token when
	// ACLs are off (with ACLs on, an admin token is always needed).
	EnablePprof bool
	// Retention bounds the history the replicated state keeps.
	Retention RetentionConfig
	// Notify are the notification targets (notify "NAME" blocks) the
	// leader delivers audit events to (internal/notify).
	Notify []NotifyConfig
	// UIURL is the dashboard's address as people open it
	// ("https://rollwave.example.com"); Slack messages link releases to
	// <ui_url>/ui/releases/<id>. Empty: no link.
	UIURL string
}

// RetentionConfig is the `retention { }` block: the leader prunes finished
// releases beyond ReleasesPerApp per app (with their events and assignment
// history) and audit events older than Events. Active releases, and
// releases a host still runs, are always kept.
type RetentionConfig struct {
	// ReleasesPerApp: finished releases kept per app; default 50, 0 keeps
	// all, at most 100000.
	ReleasesPerApp int
	// Events: how long audit events are kept; default 720h (30 days), 0
	// keeps them forever, else at least 1h.
	Events time.Duration
}

// Retention bounds (the coordinator enforces the same).
const (
	DefaultRetentionReleasesPerApp = 50
	DefaultRetentionEvents         = 720 * time.Hour
	MaxRetentionReleasesPerApp     = 100_000
	MinRetentionEvents             = time.Hour
)

func (r RetentionConfig) validate(ps *problems) {
	const p = "retention"
	if r.ReleasesPerApp < 0 || r.ReleasesPerApp > MaxRetentionReleasesPerApp {
		ps.add(p+".releases_per_app", "must be 0 (keep every release) to %d, got %d", MaxRetentionReleasesPerApp, r.ReleasesPerApp)
	}
	if r.Events < 0 || (r.Events > 0 && r.Events < MinRetentionEvents) {
		ps.add(p+".events", "must be 0 (keep events forever) or at least %s, got %s", MinRetentionEvents, r.Events)
	}
}

// LimitsConfig is the `limits { }` block (as Consul's): what one client,
// and all clients together, may hold open on the gRPC listener. A
// connection over a cap is closed as soon as it is accepted.
type LimitsConfig struct {
	// RPCMaxConnsPerClient caps the open gRPC connections from one IP
	// address; default 100, 0 = no cap. An agent holds one connection;
	// raise it only for many clients behind one address (NAT).
	RPCMaxConnsPerClient int
	// RPCMaxConns caps all open gRPC connections; default 30000, 0 = no
	// cap. Keep it below the process's file descriptor limit
	// (LimitNOFILE=65536 in the packaged unit).
	RPCMaxConns int
	// RPCHandshakeTimeout closes a connection that has not completed its
	// TLS handshake and HTTP/2 preface in time; default 5s, from 100ms to
	// 5m.
	RPCHandshakeTimeout time.Duration
	// RPCIdleTimeout closes a connection with no call open for this long
	// (clients reconnect when they next call); default 5m, from 1s to 24h.
	RPCIdleTimeout time.Duration
}

// ACLConfig is the `acl { enabled = true }` block.
type ACLConfig struct {
	// Enabled requires an ACL token on every operator call but status.
	// Set it alike on every server of a cluster.
	Enabled bool
}

// ServerAddresses are a server's three endpoints, each host:port.
type ServerAddresses struct {
	// GRPC serves agents and the CLI; default "127.0.0.1:7420".
	GRPC string
	// Raft carries raft traffic; default "127.0.0.1:7421".
	Raft string
	// Gossip is memberlist's TCP and UDP address; default "127.0.0.1:7422".
	Gossip string
}

// RaftConfig carries the hashicorp/raft settings operators may tune. The
// checks in Validate are raft's own (raft.ValidateConfig), reported with
// field names before raft ever sees them.
type RaftConfig struct {
	// HeartbeatTimeout: a follower without contact this long starts an
	// election; default 1s, at least 5ms.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate without a leader this long starts an
	// election; default 1s, at least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader without quorum contact this long steps
	// down; default 500ms, at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a commit waits for more entries to
	// batch; default 50ms, at least 1ms.
	CommitTimeout time.Duration
	// SnapshotInterval is how often raft checks whether to snapshot;
	// default 120s, at least 5ms.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot;
	// default 8192, at least 1.
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay after a snapshot so slow
	// followers can catch up from the log; default 10240.
	TrailingLogs uint64
	// FastFailover lets a follower campaign after LeaderLeaseTimeout
	// instead of HeartbeatTimeout when a raft connection ends and the
	// leader's raft port refuses connections (its process is gone);
	// default true. It has no effect when LeaderLeaseTimeout equals
	// HeartbeatTimeout.
	FastFailover bool
}

// DefaultServerConfig returns the defaults. NodeName is the host name
// (empty if it cannot be read).
func DefaultServerConfig() *ServerConfig {
	return &ServerConfig{
		NodeName: hostname(),
		Region:   DefaultRegion,
		LogLevel: LogInfo,
		Addresses: ServerAddresses{
			GRPC:   "127.0.0.1:7420",
			Raft:   "127.0.0.1:7421",
			Gossip: "127.0.0.1:7422",
		},
		HTTPAddr: DefaultServerHTTPAddr,
		TLS:      TLSConfig{VerifyServerHostname: true},
		Retention: RetentionConfig{
			ReleasesPerApp: DefaultRetentionReleasesPerApp,
			Events:         DefaultRetentionEvents,
		},
		Limits: LimitsConfig{
			RPCMaxConnsPerClient: 100,
			RPCMaxConns:          30000,
			RPCHandshakeTimeout:  5 * time.Second,
			RPCIdleTimeout:       5 * time.Minute,
		},
		Raft: RaftConfig{
			HeartbeatTimeout:   time.Second,
			ElectionTimeout:    time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			CommitTimeout:      50 * time.Millisecond,
			SnapshotInterval:   120 * time.Second,
			SnapshotThreshold:  8192,
			TrailingLogs:       10240,
			FastFailover:       true,
		},
	}
}

// ParseServerConfig parses a server config file (HCL, or JSON when
// filename ends in ".json") over DefaultServerConfig and validates it. On
// failure the error is a Diagnostics listing every problem.
func ParseServerConfig(filename string, src []byte) (*ServerConfig, error) {
	d := newDecoder(filename)
	body := d.parse(src)
	if body == nil {
		return nil, d.result()
	}
	c := DefaultServerConfig()
	d.body(body, "", d.start(), c.fields())
	applyServerDerivedDefaults(c, func(path string) bool { _, ok := d.pos[path]; return ok })
	d.place(c.validate())
	if err := d.result(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *ServerConfig) fields() []field {
	addrs := func(a *ServerAddresses) blockFunc {
		return sub(
			attr("grpc", str(&a.GRPC)),
			attr("raft", str(&a.Raft)),
			attr("gossip", str(&a.Gossip)),
		)
	}
	return []field{
		attr("node_name", str(&c.NodeName)),
		attr("region", str(&c.Region)),
		attr("data_dir", str(&c.DataDir)),
		attr("dev", boolean(&c.Dev)),
		attr("bootstrap_expect", integer(&c.BootstrapExpect)),
		attr("join", strList(&c.Join)),
		attr("log_level", str(&c.LogLevel)),
		block("addresses", sub(
			attr("grpc", str(&c.Addresses.GRPC)),
			attr("raft", str(&c.Addresses.Raft)),
			attr("gossip", str(&c.Addresses.Gossip)),
			attr("http", str(&c.HTTPAddr)),
		)),
		attr("enable_pprof", boolean(&c.EnablePprof)),
		block("advertise", addrs(&c.Advertise)),
		block("tls", tlsFields(&c.TLS)),
		attr("encrypt", str(&c.Encrypt)),
		attr("encrypt_file", str(&c.EncryptFile)),
		attr("gate_credentials_dir", str(&c.GateCredentialsDir)),
		attr("gate_url_prefixes", strList(&c.GateURLPrefixes)),
		block("acl", sub(
			attr("enabled", boolean(&c.ACL.Enabled)),
		)),
		block("limits", sub(
			attr("rpc_max_conns_per_client", integer(&c.Limits.RPCMaxConnsPerClient)),
			attr("rpc_max_conns", integer(&c.Limits.RPCMaxConns)),
			attr("rpc_handshake_timeout", duration(&c.Limits.RPCHandshakeTimeout)),
			attr("rpc_idle_timeout", duration(&c.Limits.RPCIdleTimeout)),
		)),
		block("retention", sub(
			attr("releases_per_app", integer(&c.Retention.ReleasesPerApp)),
			attr("events", duration(&c.Retention.Events)),
		)),
		{name: "notify", labels: []string{"name"}, repeated: true, block: notifyBlock(&c.Notify)},
		attr("ui_url", str(&c.UIURL)),
		block("raft", sub(
			attr("heartbeat_timeout", duration(&c.Raft.HeartbeatTimeout)),
			attr("election_timeout", duration(&c.Raft.ElectionTimeout)),
			attr("leader_lease_timeout", duration(&c.Raft.LeaderLeaseTimeout)),
			attr("commit_timeout", duration(&c.Raft.CommitTimeout)),
			attr("snapshot_interval", duration(&c.Raft.SnapshotInterval)),
			attr("snapshot_threshold", unsigned(&c.Raft.SnapshotThreshold)),
			attr("trailing_logs", unsigned(&c.Raft.TrailingLogs)),
			attr("fast_failover", boolean(&c.Raft.FastFailover)),
		)),
	}
}

// Validate checks c, whether it came from a file or from flags. Field
// paths are the config file's names ("addresses.grpc"). The error is a
// Diagnostics.
func (c *ServerConfig) Validate() error {
	return c.validate().diagnostics().err()
}

func (c *ServerConfig) validate() problems {
	var ps problems
	checkName(&ps, "node_name", c.NodeName)
	checkName(&ps, "region", c.Region)
	if c.DataDir == "" && !c.Dev {
		ps.add("data_dir", "is required unless dev = true; expected a directory for raft's data")
	}
	switch {
	case c.BootstrapExpect < 0:
		ps.add("bootstrap_expect", "must be at least 0 (0 means join an existing cluster), got %d", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && c.Dev:
		ps.add("bootstrap_expect", "cannot be combined with dev (a dev server bootstraps itself), got %d", c.BootstrapExpect)
	}
	checkJoin(&ps, "join", c.Join)
	if c.GateCredentialsDir != "" && !filepath.IsAbs(c.GateCredentialsDir) {
		ps.add("gate_credentials_dir", "must be an absolute path, got %q", c.GateCredentialsDir)
	}
	for i, raw := range c.GateURLPrefixes {
		if _, err := ParseArtifactPrefix(raw); err != nil {
			ps.add(index("gate_url_prefixes", i), "%v", err)
		} else if strings.HasPrefix(strings.ToLower(raw), "file:") {
			ps.add(index("gate_url_prefixes", i), "must be an http:// or https:// prefix, got %q", RedactURL(raw))
		}
	}
	checkEnum(&ps, "log_level", c.LogLevel, LogDebug, LogInfo, LogWarn, LogError)

	checkBind(&ps, "addresses.grpc", c.Addresses.GRPC)
	checkBind(&ps, "addresses.raft", c.Addresses.Raft)
	checkBind(&ps, "addresses.gossip", c.Addresses.Gossip)
	checkHTTPAddr(&ps, "addresses.http", c.HTTPAddr)
	checkDistinct(&ps, "addresses", map[string]string{
		"grpc": c.Addresses.GRPC, "raft": c.Addresses.Raft, "gossip": c.Addresses.Gossip, "http": httpBind(c.HTTPAddr),
	}, []string{"grpc", "raft", "gossip", "http"})
	checkAdvertiseField(&ps, "advertise.grpc", c.Advertise.GRPC)
	checkAdvertiseField(&ps, "advertise.raft", c.Advertise.Raft)
	checkAdvertiseField(&ps, "advertise.gossip", c.Advertise.Gossip)

	c.Raft.validate(&ps)
	c.Limits.validate(&ps)
	c.Retention.validate(&ps)
	c.validateNotify(&ps)
	c.TLS.validate(&ps)
	checkGossipKey(&ps, "encrypt", c.Encrypt)
	if c.Encrypt != "" && c.EncryptFile != "" {
		ps.add("encrypt_file", "both encrypt and encrypt_file are set; give only one (encrypt_file keeps the key out of the config file)")
	}
	return ps
}

// checkDistinct reports two endpoints bound to the same non-zero port on
// the same host.
func checkDistinct(ps *problems, p string, addrs map[string]string, order []string) {
	seen := map[string]string{}
	for _, name := range order {
		host, port := splitPort(addrs[name])
		if port == 0 {
			continue
		}
		key := fmt.Sprintf("%s:%d", host, port)
		if other, dup := seen[key]; dup {
			ps.add(p+"."+name, "%s is also %s.%s; each endpoint needs its own port", addrs[name], p, other)
			continue
		}
		seen[key] = name
	}
}

func (r RaftConfig) validate(ps *problems) {
	const p = "raft"
	atLeast := func(name string, v, min time.Duration) {
		if v < min {
			ps.add(p+"."+name, "must be at least %s, got %s", min, v)
		}
	}
	atLeast("heartbeat_timeout", r.HeartbeatTimeout, 5*time.Millisecond)
	atLeast("election_timeout", r.ElectionTimeout, 5*time.Millisecond)
	atLeast("leader_lease_timeout", r.LeaderLeaseTimeout, 5*time.Millisecond)
	atLeast("commit_timeout", r.CommitTimeout, time.Millisecond)
	atLeast("snapshot_interval", r.SnapshotInterval, 5*time.Millisecond)
	atMost(ps, p+".heartbeat_timeout", r.HeartbeatTimeout, MaxRaftTimeout)
	atMost(ps, p+".election_timeout", r.ElectionTimeout, MaxRaftTimeout)
	atMost(ps, p+".leader_lease_timeout", r.LeaderLeaseTimeout, MaxRaftTimeout)
	atMost(ps, p+".commit_timeout", r.CommitTimeout, MaxRaftTimeout)
	atMost(ps, p+".snapshot_interval", r.SnapshotInterval, MaxSnapshotInterval)
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		ps.add(p+".leader_lease_timeout", "must not exceed heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.LeaderLeaseTimeout)
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		ps.add(p+".election_timeout", "must be at least heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.ElectionTimeout)
	}
	if r.SnapshotThreshold < 1 {
		ps.add(p+".snapshot_threshold", "must be at least 1, got %d", r.SnapshotThreshold)
	}
}

func (l LimitsConfig) validate(ps *problems) {
	const p = "limits"
	if l.RPCMaxConnsPerClient < 0 {
		ps.add(p+".rpc_max_conns_per_client", "must be 0 (no cap) or more, got %d", l.RPCMaxConnsPerClient)
	}
	if l.RPCMaxConns < 0 {
		ps.add(p+".rpc_max_conns", "must be 0 (no cap) or more, got %d", l.RPCMaxConns)
	}
	if l.RPCMaxConns > 0 && l.RPCMaxConnsPerClient > l.RPCMaxConns {
		ps.add(p+".rpc_max_conns_per_client", "must not exceed rpc_max_conns (%d), got %d", l.RPCMaxConns, l.RPCMaxConnsPerClient)
	}
	within := func(name string, v, min, max time.Duration) {
		if v < min || v > max {
			ps.add(p+"."+name, "must be from %s to %s, got %s", min, max, v)
		}
	}
	within("rpc_handshake_timeout", l.RPCHandshakeTimeout, 100*time.Millisecond, 5*time.Minute)
	within("rpc_idle_timeout", l.RPCIdleTimeout, time.Second, 24*time.Hour)
}
