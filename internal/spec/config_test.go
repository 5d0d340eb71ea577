package spec

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

func TestParseServerConfig(t *testing.T) {
	want := &ServerConfig{
		NodeName:        "coord-1",
		Region:          "eu-west",
		DataDir:         "/var/lib/rollwave",
		BootstrapExpect: 3,
		Join:            []string{"10.0.0.2:7422", "coord-3.internal:7422"},
		LogLevel:        speccore.LogDebug,
		Addresses:       ServerAddresses{GRPC: "0.0.0.0:7420", Raft: "0.0.0.0:7421", Gossip: "0.0.0.0:7422"},
		Advertise:       ServerAddresses{GRPC: "10.0.0.1:7420", Raft: "10.0.0.1:7421", Gossip: "10.0.0.1:7422"},
		Raft: RaftConfig{
			HeartbeatTimeout:   2 * time.Second,
			ElectionTimeout:    3 * time.Second,
			LeaderLeaseTimeout: time.Second,
			CommitTimeout:      20 * time.Millisecond,
			SnapshotInterval:   time.Minute,
			SnapshotThreshold:  4096,
			TrailingLogs:       2048,
			FastFailover:       true,
		},
		TLS:         speccore.TLSConfig{VerifyServerHostname: true},
		Limits:      DefaultServerConfig().Limits,
		HTTPAddr:    "0.0.0.0:7424",
		EnablePprof: true,
		Retention:   DefaultServerConfig().Retention,
	}
	for _, name := range []string{"testdata/config/server.hcl", "testdata/config/server.json"} {
		got, err := ParseServerConfig(name, readFile(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", name, got, want)
		}
	}
}

func TestParseServerConfigDefaults(t *testing.T) {
	got, err := ParseServerConfig("dev.hcl", []byte("dev = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultServerConfig()
	want.Dev = true
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	if want.NodeName != speccore.Hostname() || want.Region != "global" || want.LogLevel != "info" ||
		want.Addresses != (ServerAddresses{GRPC: "127.0.0.1:7420", Raft: "127.0.0.1:7421", Gossip: "127.0.0.1:7422"}) ||
		want.Raft != (RaftConfig{
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
			CommitTimeout: 50 * time.Millisecond, SnapshotInterval: 120 * time.Second,
			SnapshotThreshold: 8192, TrailingLogs: 10240, FastFailover: true,
		}) {
		t.Fatalf("unexpected defaults: %+v", want)
	}
}

// The limits block (issue 11 item 7): defaults, parsing, validation.
func TestParseServerConfigLimits(t *testing.T) {
	def := DefaultServerConfig().Limits
	if def != (LimitsConfig{RPCMaxConnsPerClient: 100, RPCMaxConns: 30000, RPCHandshakeTimeout: 5 * time.Second, RPCIdleTimeout: 5 * time.Minute}) {
		t.Fatalf("defaults changed: %+v", def)
	}
	got, err := ParseServerConfig("s.hcl", []byte("dev = true\nlimits {\n  rpc_max_conns_per_client = 0\n  rpc_max_conns = 500\n  rpc_handshake_timeout = \"2s\"\n  rpc_idle_timeout = \"1m\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (LimitsConfig{RPCMaxConns: 500, RPCHandshakeTimeout: 2 * time.Second, RPCIdleTimeout: time.Minute}); got.Limits != want {
		t.Fatalf("limits = %+v, want %+v", got.Limits, want)
	}
	_, err = ParseServerConfig("s.hcl", []byte("dev = true\nlimits {\n  rpc_max_conns_per_client = -1\n  rpc_max_conns = 10\n  rpc_handshake_timeout = \"0s\"\n  rpc_idle_timeout = \"9999h\"\n}\n"))
	for _, want := range []string{
		"s.hcl:3:30: limits.rpc_max_conns_per_client: must be 0 (no cap) or more, got -1",
		"s.hcl:5:27: limits.rpc_handshake_timeout: must be from 100ms to 5m0s, got 0s",
		"s.hcl:6:22: limits.rpc_idle_timeout: must be from 1s to 24h0m0s, got 9999h0m0s",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in\n%v", want, err)
		}
	}
	_, err = ParseServerConfig("s.hcl", []byte("dev = true\nlimits {\n  rpc_max_conns_per_client = 200\n  rpc_max_conns = 100\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "limits.rpc_max_conns_per_client: must not exceed rpc_max_conns (100), got 200") {
		t.Errorf("per-client above total: %v", err)
	}
}

func TestParseServerConfigInvalid(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{
			// No data_dir outside dev mode: reported at the top of the file.
			name: "data_dir required",
			src:  "node_name = \"a\"\n",
			want: []string{`server.hcl:1:1: data_dir: is required unless dev = true`},
		},
		{
			// dev bootstraps itself.
			name: "dev with bootstrap_expect",
			src:  "dev = true\nbootstrap_expect = 3\n",
			want: []string{`server.hcl:2:20: bootstrap_expect: cannot be combined with dev (a dev server bootstraps itself), got 3`},
		},
		{
			// Unknown top-level field, with a suggestion.
			name: "unknown field",
			src:  "dev = true\nnode_nam = \"x\"\n",
			want: []string{`server.hcl:2:1: unknown field "node_nam" (did you mean "node_name"?); expected one of node_name, region, data_dir,`},
		},
		{
			// Wrong types.
			name: "types",
			src:  "dev = \"yes\"\nbootstrap_expect = -1\ndata_dir = \"/d\"\n",
			want: []string{
				`server.hcl:1:7: dev: expected true or false, got string "yes"`,
				`server.hcl:2:20: bootstrap_expect: must be at least 0 (0 means join an existing cluster), got -1`,
			},
		},
		{
			// Bind addresses: host:port, port 0 allowed; distinct ports.
			name: "addresses",
			src:  "dev = true\naddresses {\n  grpc = \"127.0.0.1\"\n  raft = \"127.0.0.1:0\"\n  gossip = \"127.0.0.1:99999\"\n}\n",
			want: []string{
				`server.hcl:3:10: addresses.grpc: expected host:port such as "127.0.0.1:8080" or ":8080", got "127.0.0.1"`,
				`server.hcl:5:12: addresses.gossip: port must be a number from 0 to 65535, got "99999" in "127.0.0.1:99999"`,
			},
		},
		{
			// Gate settings: an absolute directory, http(s) prefixes.
			name: "gate settings",
			src:  "dev = true\ngate_credentials_dir = \"creds\"\ngate_url_prefixes = [\"http://prom:9090\", \"file:///etc\", \"ftp://x\"]\n",
			want: []string{
				`server.hcl:2:24: gate_credentials_dir: must be an absolute path, got "creds"`,
				`gate_url_prefixes[1]: must be an http:// or https:// prefix, got "file:///etc"`,
				`gate_url_prefixes[2]: invalid artifact URL: URL scheme must be one of`,
			},
		},
		{
			// Two endpoints on one port.
			name: "port clash",
			src:  "dev = true\naddresses {\n  raft = \"127.0.0.1:7420\"\n}\n",
			want: []string{`server.hcl:3:10: addresses.raft: 127.0.0.1:7420 is also addresses.grpc; each endpoint needs its own port`},
		},
		{
			// The HTTP listener: a bind address or "off"; its own port;
			// no advertised form; enable_pprof is a bool.
			name: "http address",
			src:  "dev = true\naddresses {\n  http = \"127.0.0.1:7420\"\n}\nadvertise {\n  http = \"10.0.0.1:7424\"\n}\nenable_pprof = \"yes\"\n",
			want: []string{
				`server.hcl:3:10: addresses.http: 127.0.0.1:7420 is also addresses.grpc; each endpoint needs its own port`,
				`server.hcl:6:3: advertise: unknown field "http"`,
				`server.hcl:8:16: enable_pprof: expected true or false, got string "yes"`,
			},
		},
		{
			name: "http address not host:port",
			src:  "dev = true\naddresses {\n  http = \"metrics\"\n}\n",
			want: []string{`server.hcl:3:10: addresses.http: expected host:port such as "127.0.0.1:8080" or ":8080", got "metrics" (or "off" for no HTTP listener)`},
		},
		{
			// Advertised and joined addresses must be dialable.
			name: "advertise and join",
			src:  "dev = true\njoin = [\"10.0.0.1:7422\", \"10.0.0.2\"]\nadvertise {\n  grpc = \"0.0.0.0:7420\"\n  raft = \":7421\"\n}\n",
			want: []string{
				`server.hcl:2:26: join[1]: expected host:port such as "127.0.0.1:8080" or ":8080", got "10.0.0.2"`,
				`server.hcl:4:10: advertise.grpc: an advertised address cannot be the unspecified address, got "0.0.0.0:7420"`,
				`server.hcl:5:10: advertise.raft: an advertised address needs a host peers can dial, got ":7421"`,
			},
		},
		{
			// raft's own rules, named by field.
			name: "raft timing",
			src:  "dev = true\nraft {\n  heartbeat_timeout = \"1ms\"\n  leader_lease_timeout = \"2s\"\n  snapshot_threshold = -4\n  commit_timeout = \"soon\"\n}\n",
			want: []string{
				`server.hcl:3:23: raft.heartbeat_timeout: must be at least 5ms, got 1ms`,
				`server.hcl:4:26: raft.leader_lease_timeout: must not exceed heartbeat_timeout (1ms), got 2s`,
				`server.hcl:5:24: raft.snapshot_threshold: expected a whole number of at least 0, got -4`,
				`server.hcl:6:20: raft.commit_timeout: expected a duration such as "30s", "5m" or "1h30m", got "soon"`,
			},
		},
		{
			// Election must not be quicker than heartbeat; log level enum.
			name: "election and log level",
			src:  "dev = true\nlog_level = \"trace\"\nraft {\n  election_timeout = \"500ms\"\n}\n",
			want: []string{
				`server.hcl:2:13: log_level: must be one of debug, info, warn, error, got "trace"`,
				`server.hcl:4:22: raft.election_timeout: must be at least heartbeat_timeout (1s), got 500ms`,
			},
		},
		{
			// Bad names.
			name: "names",
			src:  "dev = true\nnode_name = \"has space\"\nregion = \"\"\n",
			want: []string{
				`server.hcl:2:13: node_name: must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, got "has space"`,
				`server.hcl:3:10: region: must not be empty`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseServerConfig("server.hcl", []byte(tc.src))
			if c != nil {
				t.Errorf("got a config with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
}

func TestServerConfigValidate(t *testing.T) {
	// Flag-built: no positions, same checks.
	c := DefaultServerConfig()
	c.NodeName = "n1"
	if err := c.Validate(); err == nil || err.Error() != `data_dir: is required unless dev = true; expected a directory for raft's data` {
		t.Fatalf("got %v", err)
	}
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Port 0 picks a free port: valid for tests, and never a clash.
	c.Addresses = ServerAddresses{GRPC: "127.0.0.1:0", Raft: "127.0.0.1:0", Gossip: "127.0.0.1:0"}
	c.Raft.HeartbeatTimeout, c.Raft.ElectionTimeout, c.Raft.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.BootstrapExpect, c.Dev = 1, true
	checkDiags(t, c.Validate(), []string{`bootstrap_expect: cannot be combined with dev`})
}

func TestParseAgentConfig(t *testing.T) {
	got, err := speccore.ParseAgentConfig("testdata/config/agent.hcl", readFile(t, "testdata/config/agent.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	want := &speccore.AgentConfig{
		NodeName:          "web-17",
		Cell:              "eu-west-1a",
		Region:            "eu-west",
		Labels:            map[string]string{"rack": "r12", "tier": "edge"},
		DataDir:           "/srv/rollwave-agent",
		Join:              []string{"10.0.0.1:7422", "10.0.0.2:7422"},
		UnitDriver:        speccore.DriverProcess,
		HeartbeatInterval: 5 * time.Second,
		Addresses:         speccore.AgentAddresses{Gossip: "0.0.0.0:7423"},
		Advertise:         speccore.AgentAddresses{Gossip: "10.1.2.17:7423"},
		LogLevel:          speccore.LogWarn,
		TLS:               speccore.TLSConfig{VerifyServerHostname: true},
		Policy:            speccore.AgentPolicy{AllowRoot: true},
		Limits:            speccore.DefaultAgentLimits(),
		HTTPAddr:          "off",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}

	// Defaults: only the required fields set.
	got, err = speccore.ParseAgentConfig("agent.json", []byte(`{"cell": "c1", "join": ["10.0.0.1:7422"]}`))
	if err != nil {
		t.Fatal(err)
	}
	want = speccore.DefaultAgentConfig()
	want.Cell, want.Join = "c1", []string{"10.0.0.1:7422"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	if want.DataDir != "/var/lib/rollwave-agent" || want.UnitDriver != speccore.DriverSystemd ||
		want.HeartbeatInterval != 2*time.Second || want.Addresses.Gossip != "0.0.0.0:7423" ||
		want.Region != "global" || want.LogLevel != "info" || want.NodeName != speccore.Hostname() {
		t.Fatalf("unexpected defaults: %+v", want)
	}
}

func TestParseAgentConfigInvalid(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{
			// Cell and join are required.
			name: "required",
			src:  "node_name = \"h1\"\n",
			want: []string{
				`agent.hcl:1:1: cell: is required`,
				`agent.hcl:1:1: join: needs at least one coordinator gossip address`,
			},
		},
		{
			// Enum, duration and map types.
			name: "types",
			src:  "cell = \"c\"\njoin = [\"a:1\"]\nunit_driver = \"docker\"\nheartbeat_interval = \"0s\"\nlabels = { rack = 12 }\n",
			want: []string{
				`agent.hcl:3:15: unit_driver: must be one of systemd, process, got "docker"`,
				`agent.hcl:4:22: heartbeat_interval: must be a positive duration, got 0s`,
				`agent.hcl:5:19: labels.rack: expected a string, got number 12`,
			},
		},
		{
			// Labels must fit gossip metadata.
			name: "labels too big",
			src:  "cell = \"c\"\njoin = [\"a:1\"]\nlabels = { k = \"" + strings.Repeat("x", 300) + "\" }\n",
			want: []string{`agent.hcl:3:10: labels: labels take 303 bytes; at most 256 fit in gossip metadata`},
		},
		{
			// A field from the server's advertise block.
			name: "unknown",
			src:  "cell = \"c\"\njoin = [\"a:1\"]\nadvertise {\n  grpc = \"1.2.3.4:5\"\n}\n",
			want: []string{`agent.hcl:4:3: advertise: unknown field "grpc"; expected one of gossip`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := speccore.ParseAgentConfig("agent.hcl", []byte(tc.src))
			if c != nil {
				t.Errorf("got a config with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
}

func TestAgentConfigValidate(t *testing.T) {
	c := speccore.DefaultAgentConfig()
	c.NodeName = "h1"
	checkDiags(t, c.Validate(), []string{"cell: is required", "join: needs at least one"})
	c.Cell, c.Join = "c1", []string{"127.0.0.1:7422"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSecuritySettings(t *testing.T) {
	good := "dev = true\nencrypt = \"" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" + "\"\ntls {\n  ca_file = \"/etc/rollwave/ca.pem\"\n  cert_file = \"/etc/rollwave/s.pem\"\n  key_file = \"/etc/rollwave/s-key.pem\"\n}\n"
	c, err := ParseServerConfig("server.hcl", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled() || !c.TLS.VerifyServerHostname || len(speccore.GossipKeyBytes(c.Encrypt)) != 32 {
		t.Fatalf("tls/encrypt not parsed: %+v %q", c.TLS, c.Encrypt)
	}
	cases := []struct{ src, want string }{
		// Half a TLS setup is an error naming the missing file.
		{"dev = true\ntls {\n  ca_file = \"/ca.pem\"\n}\n", "tls.cert_file: is required"},
		// A gossip key must be base64 of 16, 24 or 32 bytes.
		{"dev = true\nencrypt = \"not base64!\"\n", "encrypt: must be base64"},
		{"dev = true\nencrypt = \"AAAA\"\n", "must decode to 16, 24 or 32 bytes, got 3"},
	}
	for _, tc := range cases {
		_, err := ParseServerConfig("server.hcl", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want error containing %q, got %v", tc.src, tc.want, err)
		}
	}
	ag, err := speccore.ParseAgentConfig("agent.hcl", []byte("cell = \"a\"\njoin = [\"10.0.0.1:7422\"]\ntls {\n  ca_file = \"/ca.pem\"\n  cert_file = \"/a.pem\"\n  key_file = \"/a-key.pem\"\n  verify_server_hostname = false\n}\n"))
	if err != nil || !ag.TLS.Enabled() || ag.TLS.VerifyServerHostname {
		t.Fatalf("agent tls: %+v %v", ag.TLS, err)
	}
	ag, err = speccore.ParseAgentConfig("agent.hcl", []byte("cell = \"a\"\njoin = [\"10.0.0.1:7422\"]\npolicy {\n  artifact_prefixes = [\"https://artifacts.internal/\"]\n  unit_users = [\"api\"]\n  allow_root = false\n}\n"))
	if err != nil || ag.Policy.AllowRoot || len(ag.Policy.ArtifactPrefixes) != 1 || ag.Policy.UnitUsers[0] != "api" {
		t.Fatalf("agent policy: %+v %v", ag.Policy, err)
	}
}

// raft.fast_failover (issue 13 item 9): on by default, can be turned off,
// and anything but a bool is refused naming the field.
func TestParseServerConfigFastFailover(t *testing.T) {
	got, err := ParseServerConfig("s.hcl", []byte("dev = true\nraft {\n  fast_failover = false\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Raft.FastFailover {
		t.Fatal("fast_failover = false was not applied")
	}
	c, err := ParseServerConfig("s.hcl", []byte("dev = true\nraft {\n  fast_failover = \"yes\"\n}\n"))
	if c != nil {
		t.Error("got a config with errors")
	}
	checkDiags(t, err, []string{`s.hcl:3:19: raft.fast_failover: expected true or false, got string "yes"`})
}

// The retention block (issue 13 item 3): defaults, parsing, validation
// naming the field and its line.
func TestParseServerConfigRetention(t *testing.T) {
	if def := DefaultServerConfig().Retention; def != (RetentionConfig{ReleasesPerApp: 50, Events: 720 * time.Hour}) {
		t.Fatalf("defaults changed: %+v", def)
	}
	got, err := ParseServerConfig("s.hcl", []byte("dev = true\nretention {\n  releases_per_app = 5\n  events = \"48h\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (RetentionConfig{ReleasesPerApp: 5, Events: 48 * time.Hour}); got.Retention != want {
		t.Fatalf("retention = %+v, want %+v", got.Retention, want)
	}
	got, err = ParseServerConfig("s.hcl", []byte("dev = true\nretention {\n  releases_per_app = 0\n  events = \"0s\"\n}\n"))
	if err != nil || got.Retention != (RetentionConfig{}) {
		t.Fatalf("keep-everything retention: %+v, %v", got.Retention, err)
	}
	_, err = ParseServerConfig("s.hcl", []byte("dev = true\nretention {\n  releases_per_app = -1\n  events = \"10m\"\n}\n"))
	for _, want := range []string{
		"s.hcl:3:22: retention.releases_per_app: must be 0 (keep every release) to 100000, got -1",
		"s.hcl:4:12: retention.events: must be 0 (keep events forever) or at least 1h0m0s, got 10m0s",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
	_, err = ParseServerConfig("s.hcl", []byte("dev = true\nretention {\n  releases_per_app = 100001\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "retention.releases_per_app: must be 0 (keep every release) to 100000, got 100001") {
		t.Errorf("err = %v", err)
	}
	_, err = ParseServerConfig("s.hcl", []byte("dev = true\nretention {\n  events = \"soon\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "retention.events") {
		t.Errorf("err = %v", err)
	}
}

// An agent's tls.region names the certificates' region when the host's
// own region (placement for parallel regions) differs; a bad one is an
// error naming the field.
func TestAgentConfigTLSRegion(t *testing.T) {
	src := `node_name = "h1"
cell = "eu-1"
region = "eu"
join = ["10.0.0.1:7423"]
tls {
  ca_file   = "/etc/rollwave/ca.pem"
  cert_file = "/etc/rollwave/agent.pem"
  key_file  = "/etc/rollwave/agent-key.pem"
  region    = "global"
}
`
	c, err := speccore.ParseAgentConfig("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu" || c.TLS.Region != "global" {
		t.Fatalf("region %q, tls.region %q", c.Region, c.TLS.Region)
	}
	_, err = speccore.ParseAgentConfig("agent.hcl", []byte(strings.Replace(src, `region    = "global"`, `region    = "no spaces"`, 1)))
	if err == nil || !strings.Contains(err.Error(), "tls.region") {
		t.Fatalf("err = %v, want one naming tls.region", err)
	}
}
