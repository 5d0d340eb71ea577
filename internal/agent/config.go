// Package agent assembles rollwave-agent: it joins the gossip pool, keeps a
// session with the coordinator leader, runs assignments on the host's
// blue/green slots, reports health and metrics, and reverts on its own when
// it loses the leader in the middle of a bake.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// Config configures an agent.
type Config struct {
	// NodeName is the host id in gossip and raft. Required.
	NodeName string
	// Cell and Region place the host; Cell is required.
	Cell   string
	Region string
	// Labels are free-form host labels used by release targets.
	Labels map[string]string
	// DataDir holds the slot state, slot directories and the agent's own
	// order records. Must be absolute.
	DataDir string
	// Join lists gossip addresses (host:port) of coordinators or agents.
	Join []string
	// JoinTimeout bounds the first join at start of an agent that never
	// knew a coordinator; failing it is fatal. An agent that did (its data
	// dir records them) starts without waiting and keeps looking.
	JoinTimeout time.Duration
	// GossipAddr is the gossip listen address (TCP and UDP).
	GossipAddr string
	// AdvertiseGossip overrides the address other members dial.
	AdvertiseGossip string
	// GossipFast selects short probe intervals (tests).
	GossipFast bool
	// HeartbeatInterval is how often the agent reports to the leader.
	HeartbeatInterval time.Duration
	// ReconnectMin and ReconnectMax bound the capped exponential backoff
	// (full jitter) between session attempts.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// Driver runs slot units (systemd or process). Required.
	Driver slot.Driver
	// DialContext, when set, replaces the TCP dialer for coordinator
	// connections (tests use it to cut the agent off).
	DialContext func(ctx context.Context, addr string) (net.Conn, error)
	// PortOffset is added to every port of every release spec this agent
	// runs (blue_port, green_port, traffic.listen). It exists so several
	// agents can share one machine's loopback (the demo, in-process
	// tests); real hosts leave it 0.
	PortOffset int
	// Policy limits what any assignment may do on this host.
	Policy Policy
	// Limits bound each artifact's download and unpacked size (the config
	// file's limits block); zero fields take the defaults (2 GiB each).
	Limits slot.Limits
	// TLS, when set, makes the session mutual TLS: the agent presents its
	// agent certificate and accepts only server certificates.
	TLS *tlsutil.Config
	// GossipKey encrypts gossip (16, 24 or 32 bytes); nil = clear.
	GossipKey []byte
	// HTTPAddr is the HTTP listener's address (/metrics, /v1/health,
	// /v1/ready, pprof; internal/httpapi); "" or "off" turns it off (the
	// default here: the command sets the config file's default, 127.0.0.1:7425).
	HTTPAddr string
	// EnablePprof serves pprof on the HTTP listener (agents hold no ACL
	// tokens: this is the only way to turn it on).
	EnablePprof bool
	// DiskPath is the filesystem whose usage is reported (default DataDir).
	DiskPath string
	// Version is reported in hello and gossip.
	Version string
	// Clock is the agent's time source; nil is RealClock. Deadlines and
	// "how long since" use its monotonic reading only.
	Clock Clock
	// ReconcileEvery is the reconcilers' tick: how often each app's
	// desired and current state are compared even when nothing happened.
	ReconcileEvery time.Duration
	// RetryMin and RetryMax bound the capped exponential backoff (full
	// jitter) between attempts of a reconcile task that failed (a revert
	// that did not hold, a finalize that could not stop the old slot).
	RetryMin time.Duration
	RetryMax time.Duration
	// Logger receives all logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns defaults matching the agent's config file.
func DefaultConfig() Config {
	return Config{
		Region:            "global",
		DataDir:           "/var/lib/rollwave-agent",
		GossipAddr:        "0.0.0.0:7423",
		JoinTimeout:       30 * time.Second,
		HeartbeatInterval: 2 * time.Second,
		ReconnectMin:      200 * time.Millisecond,
		ReconnectMax:      15 * time.Second,
		Version:           "dev",
		Policy:            Policy{AllowRoot: true},
		ReconcileEvery:    time.Second,
		RetryMin:          time.Second,
		RetryMax:          30 * time.Second,
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("node_name must not be empty")
	case c.Cell == "":
		return errors.New("cell is required: every host belongs to a cell")
	case c.DataDir == "" || !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("data_dir must be an absolute path, got %q", c.DataDir)
	case len(c.Join) == 0:
		return errors.New("join needs at least one gossip address of a coordinator")
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("heartbeat_interval must be positive, got %s", c.HeartbeatInterval)
	case c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("reconnect backoff must satisfy 0 < min (%s) <= max (%s)", c.ReconnectMin, c.ReconnectMax)
	case c.JoinTimeout <= 0:
		return fmt.Errorf("join timeout must be positive, got %s", c.JoinTimeout)
	case c.PortOffset < 0 || c.PortOffset > 50000:
		return fmt.Errorf("port offset must be between 0 and 50000, got %d", c.PortOffset)
	case c.Driver == nil:
		return errors.New("a unit driver is required")
	case c.ReconcileEvery <= 0:
		return fmt.Errorf("reconcile interval must be positive, got %s", c.ReconcileEvery)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("retry backoff must satisfy 0 < min (%s) <= max (%s)", c.RetryMin, c.RetryMax)
	}
	if c.HTTPAddr != "" && c.HTTPAddr != "off" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("addresses.http %q is not host:port: %v", c.HTTPAddr, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join address %q is not host:port: %v", j, err)
		}
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Logger
}
