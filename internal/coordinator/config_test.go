package coordinator_test

import (
	"net"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
)

func TestConfigValidate(t *testing.T) {
	base := func() coordinator.Config {
		c := coordinator.DefaultConfig()
		c.NodeID = "c1"
		c.DataDir = "/tmp/x"
		return c
	}
	cases := []struct {
		name   string
		mutate func(*coordinator.Config)
		want   string // substring of the error; "" = valid
	}{
		{"defaults with id and dir are valid", func(c *coordinator.Config) {}, ""},
		// A dev server keeps nothing on disk, so it needs no data dir.
		{"dev needs no data dir", func(c *coordinator.Config) { c.Dev, c.DataDir = true, "" }, ""},
		{"missing node id", func(c *coordinator.Config) { c.NodeID = "" }, "node id"},
		{"missing data dir", func(c *coordinator.Config) { c.DataDir = "" }, "data_dir is required"},
		{"dev with bootstrap expect 3", func(c *coordinator.Config) { c.Dev, c.BootstrapExpect = true, 3 }, "cannot be combined with -dev"},
		{"negative bootstrap expect", func(c *coordinator.Config) { c.BootstrapExpect = -1 }, "bootstrap_expect must be 0 or more"},
		{"grpc address without port", func(c *coordinator.Config) { c.GRPCAddr = "localhost" }, "addresses.grpc"},
		{"raft port out of range", func(c *coordinator.Config) { c.RaftAddr = "127.0.0.1:99999" }, "addresses.raft"},
		{"bad join address", func(c *coordinator.Config) { c.Join = []string{"nonsense"} }, "join"},
		{"bad advertise", func(c *coordinator.Config) { c.AdvertiseGossip = "x:y" }, "advertise.gossip"},
		{"election shorter than heartbeat", func(c *coordinator.Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "election_timeout"},
		{"lease longer than heartbeat", func(c *coordinator.Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "leader_lease_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// A server that cannot bind one of its addresses fails with an error naming
// it and releases what it had already opened.
func TestNewFailsCleanlyWhenAPortIsTaken(t *testing.T) {
	cfg := coordtest.FastConfig(t, "c1")
	l, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = coordinator.New(cfg)
	if err == nil || !strings.Contains(err.Error(), cfg.RaftAddr) {
		t.Fatalf("want an error naming %s, got %v", cfg.RaftAddr, err)
	}
	// The gRPC listener opened before the failure was closed again.
	g, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		t.Fatalf("gRPC address still held after failed start: %v", err)
	}
	g.Close()
}
