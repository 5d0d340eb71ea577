package spec

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
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
	TLS speccore.TLSConfig
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

func (r RetentionConfig) validate(ps *speccore.Problems) {
	const p = "retention"
	if r.ReleasesPerApp < 0 || r.ReleasesPerApp > MaxRetentionReleasesPerApp {
		ps.Add(p+".releases_per_app", "must be 0 (keep every release) to %d, got %d", MaxRetentionReleasesPerApp, r.ReleasesPerApp)
	}
	if r.Events < 0 || (r.Events > 0 && r.Events < MinRetentionEvents) {
		ps.Add(p+".events", "must be 0 (keep events forever) or at least %s, got %s", MinRetentionEvents, r.Events)
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
		NodeName: speccore.Hostname(),
		Region:   speccore.DefaultRegion,
		LogLevel: speccore.LogInfo,
		Addresses: ServerAddresses{
			GRPC:   "127.0.0.1:7420",
			Raft:   "127.0.0.1:7421",
			Gossip: "127.0.0.1:7422",
		},
		HTTPAddr: speccore.DefaultServerHTTPAddr,
		TLS:      speccore.TLSConfig{VerifyServerHostname: true},
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
	d := speccore.NewDecoder(filename)
	body := d.Parse(src)
	if body == nil {
		return nil, d.Result()
	}
	c := DefaultServerConfig()
	d.Body(body, "", d.Start(), c.fields())
	applyServerDerivedDefaults(c, func(path string) bool { _, ok := d.Pos[path]; return ok })
	d.Place(c.validate())
	if err := d.Result(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *ServerConfig) fields() []speccore.Field {
	addrs := func(a *ServerAddresses) speccore.BlockFunc {
		return speccore.Sub(
			speccore.Attr("grpc", speccore.Str(&a.GRPC)),
			speccore.Attr("raft", speccore.Str(&a.Raft)),
			speccore.Attr("gossip", speccore.Str(&a.Gossip)),
		)
	}
	return []speccore.Field{
		speccore.Attr("node_name", speccore.Str(&c.NodeName)),
		speccore.Attr("region", speccore.Str(&c.Region)),
		speccore.Attr("data_dir", speccore.Str(&c.DataDir)),
		speccore.Attr("dev", speccore.Boolean(&c.Dev)),
		speccore.Attr("bootstrap_expect", speccore.Integer(&c.BootstrapExpect)),
		speccore.Attr("join", speccore.StrList(&c.Join)),
		speccore.Attr("log_level", speccore.Str(&c.LogLevel)),
		speccore.Block("addresses", speccore.Sub(
			speccore.Attr("grpc", speccore.Str(&c.Addresses.GRPC)),
			speccore.Attr("raft", speccore.Str(&c.Addresses.Raft)),
			speccore.Attr("gossip", speccore.Str(&c.Addresses.Gossip)),
			speccore.Attr("http", speccore.Str(&c.HTTPAddr)),
		)),
		speccore.Attr("enable_pprof", speccore.Boolean(&c.EnablePprof)),
		speccore.Block("advertise", addrs(&c.Advertise)),
		speccore.Block("tls", speccore.TLSFields(&c.TLS)),
		speccore.Attr("encrypt", speccore.Str(&c.Encrypt)),
		speccore.Attr("encrypt_file", speccore.Str(&c.EncryptFile)),
		speccore.Attr("gate_credentials_dir", speccore.Str(&c.GateCredentialsDir)),
		speccore.Attr("gate_url_prefixes", speccore.StrList(&c.GateURLPrefixes)),
		speccore.Block("acl", speccore.Sub(
			speccore.Attr("enabled", speccore.Boolean(&c.ACL.Enabled)),
		)),
		speccore.Block("limits", speccore.Sub(
			speccore.Attr("rpc_max_conns_per_client", speccore.Integer(&c.Limits.RPCMaxConnsPerClient)),
			speccore.Attr("rpc_max_conns", speccore.Integer(&c.Limits.RPCMaxConns)),
			speccore.Attr("rpc_handshake_timeout", speccore.Duration(&c.Limits.RPCHandshakeTimeout)),
			speccore.Attr("rpc_idle_timeout", speccore.Duration(&c.Limits.RPCIdleTimeout)),
		)),
		speccore.Block("retention", speccore.Sub(
			speccore.Attr("releases_per_app", speccore.Integer(&c.Retention.ReleasesPerApp)),
			speccore.Attr("events", speccore.Duration(&c.Retention.Events)),
		)),
		{Name: "notify", Labels: []string{"name"}, Repeated: true, Block: notifyBlock(&c.Notify)},
		speccore.Attr("ui_url", speccore.Str(&c.UIURL)),
		speccore.Block("raft", speccore.Sub(
			speccore.Attr("heartbeat_timeout", speccore.Duration(&c.Raft.HeartbeatTimeout)),
			speccore.Attr("election_timeout", speccore.Duration(&c.Raft.ElectionTimeout)),
			speccore.Attr("leader_lease_timeout", speccore.Duration(&c.Raft.LeaderLeaseTimeout)),
			speccore.Attr("commit_timeout", speccore.Duration(&c.Raft.CommitTimeout)),
			speccore.Attr("snapshot_interval", speccore.Duration(&c.Raft.SnapshotInterval)),
			speccore.Attr("snapshot_threshold", speccore.Unsigned(&c.Raft.SnapshotThreshold)),
			speccore.Attr("trailing_logs", speccore.Unsigned(&c.Raft.TrailingLogs)),
			speccore.Attr("fast_failover", speccore.Boolean(&c.Raft.FastFailover)),
		)),
	}
}

// Validate checks c, whether it came from a file or from flags. Field
// paths are the config file's names ("addresses.grpc"). The error is a
// Diagnostics.
func (c *ServerConfig) Validate() error {
	return c.validate().Diagnostics().Err()
}

func (c *ServerConfig) validate() speccore.Problems {
	var ps speccore.Problems
	speccore.CheckName(&ps, "node_name", c.NodeName)
	speccore.CheckName(&ps, "region", c.Region)
	if c.DataDir == "" && !c.Dev {
		ps.Add("data_dir", "is required unless dev = true; expected a directory for raft's data")
	}
	switch {
	case c.BootstrapExpect < 0:
		ps.Add("bootstrap_expect", "must be at least 0 (0 means join an existing cluster), got %d", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && c.Dev:
		ps.Add("bootstrap_expect", "cannot be combined with dev (a dev server bootstraps itself), got %d", c.BootstrapExpect)
	}
	speccore.CheckJoin(&ps, "join", c.Join)
	if c.GateCredentialsDir != "" && !filepath.IsAbs(c.GateCredentialsDir) {
		ps.Add("gate_credentials_dir", "must be an absolute path, got %q", c.GateCredentialsDir)
	}
	for i, raw := range c.GateURLPrefixes {
		if _, err := speccore.ParseArtifactPrefix(raw); err != nil {
			ps.Add(speccore.Index("gate_url_prefixes", i), "%v", err)
		} else if strings.HasPrefix(strings.ToLower(raw), "file:") {
			ps.Add(speccore.Index("gate_url_prefixes", i), "must be an http:// or https:// prefix, got %q", speccore.RedactURL(raw))
		}
	}
	speccore.CheckEnum(&ps, "log_level", c.LogLevel, speccore.LogDebug, speccore.LogInfo, speccore.LogWarn, speccore.LogError)

	speccore.CheckBind(&ps, "addresses.grpc", c.Addresses.GRPC)
	speccore.CheckBind(&ps, "addresses.raft", c.Addresses.Raft)
	speccore.CheckBind(&ps, "addresses.gossip", c.Addresses.Gossip)
	speccore.CheckHTTPAddr(&ps, "addresses.http", c.HTTPAddr)
	speccore.CheckDistinct(&ps, "addresses", map[string]string{
		"grpc": c.Addresses.GRPC, "raft": c.Addresses.Raft, "gossip": c.Addresses.Gossip, "http": speccore.HTTPBind(c.HTTPAddr),
	}, []string{"grpc", "raft", "gossip", "http"})
	speccore.CheckAdvertiseField(&ps, "advertise.grpc", c.Advertise.GRPC)
	speccore.CheckAdvertiseField(&ps, "advertise.raft", c.Advertise.Raft)
	speccore.CheckAdvertiseField(&ps, "advertise.gossip", c.Advertise.Gossip)

	c.Raft.validate(&ps)
	c.Limits.validate(&ps)
	c.Retention.validate(&ps)
	c.validateNotify(&ps)
	c.TLS.Check(&ps)
	speccore.CheckGossipKeyField(&ps, "encrypt", c.Encrypt)
	if c.Encrypt != "" && c.EncryptFile != "" {
		ps.Add("encrypt_file", "both encrypt and encrypt_file are set; give only one (encrypt_file keeps the key out of the config file)")
	}
	return ps
}

func (r RaftConfig) validate(ps *speccore.Problems) {
	const p = "raft"
	atLeast := func(name string, v, min time.Duration) {
		if v < min {
			ps.Add(p+"."+name, "must be at least %s, got %s", min, v)
		}
	}
	atLeast("heartbeat_timeout", r.HeartbeatTimeout, 5*time.Millisecond)
	atLeast("election_timeout", r.ElectionTimeout, 5*time.Millisecond)
	atLeast("leader_lease_timeout", r.LeaderLeaseTimeout, 5*time.Millisecond)
	atLeast("commit_timeout", r.CommitTimeout, time.Millisecond)
	atLeast("snapshot_interval", r.SnapshotInterval, 5*time.Millisecond)
	speccore.AtMost(ps, p+".heartbeat_timeout", r.HeartbeatTimeout, speccore.MaxRaftTimeout)
	speccore.AtMost(ps, p+".election_timeout", r.ElectionTimeout, speccore.MaxRaftTimeout)
	speccore.AtMost(ps, p+".leader_lease_timeout", r.LeaderLeaseTimeout, speccore.MaxRaftTimeout)
	speccore.AtMost(ps, p+".commit_timeout", r.CommitTimeout, speccore.MaxRaftTimeout)
	speccore.AtMost(ps, p+".snapshot_interval", r.SnapshotInterval, speccore.MaxSnapshotInterval)
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		ps.Add(p+".leader_lease_timeout", "must not exceed heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.LeaderLeaseTimeout)
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		ps.Add(p+".election_timeout", "must be at least heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.ElectionTimeout)
	}
	if r.SnapshotThreshold < 1 {
		ps.Add(p+".snapshot_threshold", "must be at least 1, got %d", r.SnapshotThreshold)
	}
}

func (l LimitsConfig) validate(ps *speccore.Problems) {
	const p = "limits"
	if l.RPCMaxConnsPerClient < 0 {
		ps.Add(p+".rpc_max_conns_per_client", "must be 0 (no cap) or more, got %d", l.RPCMaxConnsPerClient)
	}
	if l.RPCMaxConns < 0 {
		ps.Add(p+".rpc_max_conns", "must be 0 (no cap) or more, got %d", l.RPCMaxConns)
	}
	if l.RPCMaxConns > 0 && l.RPCMaxConnsPerClient > l.RPCMaxConns {
		ps.Add(p+".rpc_max_conns_per_client", "must not exceed rpc_max_conns (%d), got %d", l.RPCMaxConns, l.RPCMaxConnsPerClient)
	}
	within := func(name string, v, min, max time.Duration) {
		if v < min || v > max {
			ps.Add(p+"."+name, "must be from %s to %s, got %s", min, max, v)
		}
	}
	within("rpc_handshake_timeout", l.RPCHandshakeTimeout, 100*time.Millisecond, 5*time.Minute)
	within("rpc_idle_timeout", l.RPCIdleTimeout, time.Second, 24*time.Hour)
}
