package speccore

import (
	"fmt"
	"strings"
	"time"
)

// Unit drivers an agent can use.
const (
	// DriverSystemd runs slots as systemd units over D-Bus.
	DriverSystemd = "systemd"
	// DriverProcess runs slots as child processes (hosts without systemd,
	// in-process tests).
	DriverProcess = "process"
)

// MaxLabelBytes bounds an agent's labels, counted as the sum of key and
// value lengths plus two bytes per label, so that they fit memberlist's
// 512-byte node metadata next to the cell, region and version.
const MaxLabelBytes = 256

// AgentConfig configures a host agent (`rollwave-agent`). Its fields
// mirror the command's flags; a config file sets the same names.
type AgentConfig struct {
	// NodeName identifies the host; default the host name.
	NodeName string
	// Cell is the host's cell (required).
	Cell string
	// Region groups servers and agents; default "global".
	Region string
	// Labels are matched by release targets (target.labels).
	Labels map[string]string
	// DataDir holds slot state and staged artifacts; default
	// /var/lib/rollwave-agent.
	DataDir string
	// Join lists coordinators' gossip addresses (host:port); at least one.
	Join []string
	// UnitDriver is systemd (default) or process.
	UnitDriver string
	// HeartbeatInterval is how often the agent reports to the leader;
	// default 2s.
	HeartbeatInterval time.Duration
	// Addresses are the listen addresses. Port 0 picks a free port (tests).
	Addresses AgentAddresses
	// Advertise are the addresses peers dial, when they differ from
	// Addresses. Empty fields mean "use Addresses".
	Advertise AgentAddresses
	// LogLevel is debug, info (default), warn or error.
	LogLevel string
	// TLS turns on mutual TLS for the session with the coordinators.
	TLS TLSConfig
	// Policy is what this host accepts from any coordinator.
	Policy AgentPolicy
	// Encrypt is the gossip encryption key (base64, `rollwave keygen`).
	Encrypt string
	// EncryptFile names a file holding the gossip encryption key, so the
	// key need not sit in the config file (or on the command line);
	// exclusive with Encrypt. The command resolves it into Encrypt before
	// Validate checks the key (spec.PickSecret: flags, then the
	// environment, then the config file).
	EncryptFile string
	// Limits bound what one assignment may make the agent download and
	// unpack.
	Limits AgentLimits
	// HTTPAddr is the HTTP listener (/metrics, /v1/health, /v1/ready,
	// pprof), the config file's addresses.http; default
	// DefaultAgentHTTPAddr, "" or "off" turns it off (http_config.go).
	HTTPAddr string
	// EnablePprof serves pprof on the HTTP listener (agents have no ACL
	// tokens: the flag is the only way to turn it on).
	EnablePprof bool
}

// AgentPolicy is the `policy { }` block: limits the host's operators put
// on every assignment, whoever sends it.
type AgentPolicy struct {
	// ArtifactPrefixes, when set, are the only places artifacts may come
	// from: URLs compared by scheme, host, port and path directory
	// (ArtifactPrefix), never as strings.
	ArtifactPrefixes []string
	// UnitUsers, when set, are the only users slot units may run as.
	UnitUsers []string
	// AllowRoot permits units that run as root (no user, or "root");
	// default true.
	AllowRoot bool
	// SpecHardeningKeys are the sandboxing settings a release's
	// unit.hardening may change; empty: none.
	SpecHardeningKeys []string
	// HookPrefixes, when set, are the only directories a release's
	// lifecycle hooks may run executables from (CheckHookPrefix:
	// absolute, or "{{slot_dir}}…" for the artifact's own); empty: any
	// absolute path.
	HookPrefixes []string
	// UnitHardening replaces the default sandboxing lines written into every
	// slot unit's [Service] section (systemd driver); nil keeps the
	// defaults, an empty list turns them off.
	UnitHardening []string
}

// AgentAddresses are an agent's endpoints, each host:port.
type AgentAddresses struct {
	// Gossip is memberlist's TCP and UDP address; default "0.0.0.0:7423".
	Gossip string
}

// DefaultAgentConfig returns the defaults. NodeName is the host name
// (empty if it cannot be read); Cell and Join have no default.
func DefaultAgentConfig() *AgentConfig {
	return &AgentConfig{
		NodeName:          Hostname(),
		Region:            DefaultRegion,
		DataDir:           "/var/lib/rollwave-agent",
		UnitDriver:        DriverSystemd,
		HeartbeatInterval: 2 * time.Second,
		Addresses:         AgentAddresses{Gossip: "0.0.0.0:7423"},
		HTTPAddr:          DefaultAgentHTTPAddr,
		LogLevel:          LogInfo,
		TLS:               TLSConfig{VerifyServerHostname: true},
		Policy:            AgentPolicy{AllowRoot: true},
		Limits:            DefaultAgentLimits(),
	}
}

// ParseAgentConfig parses an agent config file (HCL, or JSON when
// filename ends in ".json") over DefaultAgentConfig and validates it. On
// failure the error is a Diagnostics listing every problem.
func ParseAgentConfig(filename string, src []byte) (*AgentConfig, error) {
	d := NewDecoder(filename)
	body := d.Parse(src)
	if body == nil {
		return nil, d.Result()
	}
	c := DefaultAgentConfig()
	d.Body(body, "", d.Start(), c.fields())
	d.Place(c.validate())
	if err := d.Result(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *AgentConfig) fields() []Field {
	return []Field{
		Attr("node_name", Str(&c.NodeName)),
		Attr("cell", Str(&c.Cell)),
		Attr("region", Str(&c.Region)),
		Attr("labels", StrMap(&c.Labels)),
		Attr("data_dir", Str(&c.DataDir)),
		Attr("join", StrList(&c.Join)),
		Attr("unit_driver", Str(&c.UnitDriver)),
		Attr("heartbeat_interval", Duration(&c.HeartbeatInterval)),
		Attr("log_level", Str(&c.LogLevel)),
		Block("addresses", Sub(
			Attr("gossip", Str(&c.Addresses.Gossip)),
			Attr("http", Str(&c.HTTPAddr)),
		)),
		Attr("enable_pprof", Boolean(&c.EnablePprof)),
		Block("advertise", Sub(Attr("gossip", Str(&c.Advertise.Gossip)))),
		Block("tls", TLSFields(&c.TLS, Attr("region", Str(&c.TLS.Region)))),
		Attr("encrypt", Str(&c.Encrypt)),
		Attr("encrypt_file", Str(&c.EncryptFile)),
		Block("policy", Sub(
			Attr("artifact_prefixes", StrList(&c.Policy.ArtifactPrefixes)),
			Attr("unit_users", StrList(&c.Policy.UnitUsers)),
			Attr("allow_root", Boolean(&c.Policy.AllowRoot)),
			Attr("unit_hardening", StrList(&c.Policy.UnitHardening)),
			Attr("spec_hardening_keys", StrList(&c.Policy.SpecHardeningKeys)),
			Attr("hook_prefixes", StrList(&c.Policy.HookPrefixes)),
		)),
		Block("limits", limitsFields(&c.Limits)),
	}
}

// Validate checks c, whether it came from a file or from flags. Field
// paths are the config file's names ("addresses.gossip"). The error is a
// Diagnostics.
func (c *AgentConfig) Validate() error {
	return c.validate().Diagnostics().Err()
}

func (c *AgentConfig) validate() Problems {
	var ps Problems
	CheckName(&ps, "node_name", c.NodeName)
	if c.Cell == "" {
		ps.Add("cell", "is required; expected the name of the host's cell")
	} else {
		CheckName(&ps, "cell", c.Cell)
	}
	CheckName(&ps, "region", c.Region)
	if c.TLS.Region != "" {
		CheckName(&ps, "tls.region", c.TLS.Region)
	}
	size := 0
	for _, k := range SortedKeys(c.Labels) {
		if k == "" {
			ps.Add("labels", "label names must not be empty")
		}
		size += len(k) + len(c.Labels[k]) + 2
	}
	if size > MaxLabelBytes {
		ps.Add("labels", "labels take %d bytes; at most %d fit in gossip metadata", size, MaxLabelBytes)
	}
	if c.DataDir == "" {
		ps.Add("data_dir", "must not be empty")
	}
	if len(c.Join) == 0 {
		ps.Add("join", `needs at least one coordinator gossip address such as "10.0.0.1:7422"`)
	}
	CheckJoin(&ps, "join", c.Join)
	CheckEnum(&ps, "unit_driver", c.UnitDriver, DriverSystemd, DriverProcess)
	Within(&ps, "heartbeat_interval", c.HeartbeatInterval, MaxHeartbeatInterval)
	CheckBind(&ps, "addresses.gossip", c.Addresses.Gossip)
	CheckHTTPAddr(&ps, "addresses.http", c.HTTPAddr)
	CheckDistinct(&ps, "addresses", map[string]string{
		"gossip": c.Addresses.Gossip, "http": HTTPBind(c.HTTPAddr),
	}, []string{"gossip", "http"})
	CheckAdvertiseField(&ps, "advertise.gossip", c.Advertise.Gossip)
	CheckEnum(&ps, "log_level", c.LogLevel, LogDebug, LogInfo, LogWarn, LogError)
	c.TLS.Check(&ps)
	CheckGossipKeyField(&ps, "encrypt", c.Encrypt)
	if c.Encrypt != "" && c.EncryptFile != "" {
		ps.Add("encrypt_file", "both encrypt and encrypt_file are set; give only one (encrypt_file keeps the key out of the config file)")
	}
	for i, pre := range c.Policy.ArtifactPrefixes {
		if _, err := ParseArtifactPrefix(pre); err != nil {
			ps.Add(fmt.Sprintf("policy.artifact_prefixes[%d]", i), "%s", strings.TrimPrefix(err.Error(), ErrArtifactURL.Error()+": "))
		}
	}
	c.Policy.validate(&ps)
	c.Limits.validate(&ps)
	return ps
}

// validate checks the policy's users and hardening lines with the same
// checks releases get (unitsafety.go).
func (p AgentPolicy) validate(ps *Problems) {
	for i, pre := range p.HookPrefixes {
		if err := CheckHookPrefix(pre); err != nil {
			ps.Add(Index("policy.hook_prefixes", i), "%v", err)
		}
	}
	for i, u := range p.UnitUsers {
		if err := CheckUnitUser(u); err != nil || u == "" {
			if err == nil {
				err = fmt.Errorf("must not be empty")
			}
			ps.Add(Index("policy.unit_users", i), "%v", err)
		}
	}
	for i, h := range p.UnitHardening {
		if err := CheckHardeningLine(h); err != nil {
			ps.Add(Index("policy.unit_hardening", i), "%v", err)
		}
	}
}
