package gossip

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/rollwave/rollwave/internal/testutil"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.NodeName = "s1"
		c.BindAddr = "127.0.0.1:0"
		c.Meta = serverMeta("srv-1")
		return c
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"valid", func(*Config) {}, nil},
		// the defaults bind all interfaces on 7946
		{"default bind", func(c *Config) { c.BindAddr = DefaultConfig().BindAddr }, nil},
		// empty host means all interfaces
		{"empty host", func(c *Config) { c.BindAddr = ":7946" }, nil},
		{"ipv6", func(c *Config) { c.BindAddr = "[::1]:0" }, nil},
		// not host:port at all
		{"nonsense", func(c *Config) { c.BindAddr = "nonsense" }, []string{`Config.BindAddr "nonsense"`, "missing port"}},
		// port beyond 16 bits
		{"port 99999", func(c *Config) { c.BindAddr = "127.0.0.1:99999" }, []string{`Config.BindAddr "127.0.0.1:99999"`, "port 99999 out of range 0-65535"}},
		{"port not a number", func(c *Config) { c.BindAddr = "127.0.0.1:http" }, []string{`port "http" is not a number`}},
		// memberlist binds IPs, not names
		{"host name", func(c *Config) { c.BindAddr = "localhost:7946" }, []string{`host "localhost" is not an IP address`}},
		{"no name", func(c *Config) { c.NodeName = "" }, []string{"Config.NodeName is required"}},
		{"advertise no host", func(c *Config) { c.AdvertiseAddr = ":7946" }, []string{"Config.AdvertiseAddr", "host is required"}},
		// memberlist advertises the picked port when binding port 0
		{"advertise port with bind 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:7946" }, []string{"port must be 0 when BindAddr's port is 0"}},
		{"advertise ok", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, nil},
		{"bad meta", func(c *Config) { c.Meta.Role = "king" }, []string{`Config.Meta: Meta.Role "king"`}},
		// room must be left for the leave flag
		{"meta too big", func(c *Config) { c.Meta.Version = strings.Repeat("x", 500) }, []string{"Config.Meta", "exceeds the limit of 512 bytes"}},
		{"secret key", func(c *Config) { c.SecretKey = []byte("short") }, []string{"Config.SecretKey: 5 bytes"}},
		{"zero reap", func(c *Config) { c.ReapAfter = 0 }, []string{"Config.ReapAfter 0s: must be positive"}},
		{"backoff order", func(c *Config) { c.JoinBackoffMax = time.Millisecond }, []string{"Config.JoinBackoffMax 1ms"}},
		// several problems are all reported
		{"several", func(c *Config) { c.NodeName, c.BindAddr = "", "x" }, []string{"NodeName", "BindAddr"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got nil", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q should contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c := DefaultConfig()
	c.NodeName = "x"
	c.BindAddr = "127.0.0.1:99999"
	c.Meta = agentMeta("a")
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "99999") {
		t.Fatalf("New should reject the config naming the port: %v", err)
	}
}

func TestMemberlistConfig(t *testing.T) {
	c := DefaultConfig()
	c.NodeName = "n1"
	c.BindAddr = ":7000"
	c.AdvertiseAddr = "10.1.2.3:0"
	mc := c.memberlistConfig(testutil.Logger(t))
	if mc.Name != "n1" || mc.BindAddr != "0.0.0.0" || mc.BindPort != 7000 {
		t.Fatalf("bind: %s %s:%d", mc.Name, mc.BindAddr, mc.BindPort)
	}
	if mc.AdvertiseAddr != "10.1.2.3" || mc.AdvertisePort != 7000 {
		t.Fatalf("advertise port 0 should mean the bind port: %s:%d", mc.AdvertiseAddr, mc.AdvertisePort)
	}
	if mc.ProbeInterval != time.Second {
		t.Fatalf("LAN profile expected, probe interval %v", mc.ProbeInterval)
	}
	c.Fast = true
	if mc := c.memberlistConfig(testutil.Logger(t)); mc.ProbeInterval >= time.Second {
		t.Fatalf("Fast profile expected, probe interval %v", mc.ProbeInterval)
	}
}

func TestMemberlistConfigAdjust(t *testing.T) {
	c := DefaultConfig()
	c.NodeName = "n1"
	c.BindAddr = "127.0.0.1:0"
	c.Adjust = func(mc *memberlist.Config) {
		if mc.Name != "n1" || mc.ProbeInterval != time.Second {
			t.Errorf("Adjust should see the built LAN config, got name %q probe %v", mc.Name, mc.ProbeInterval)
		}
		mc.GossipNodes = 5
	}
	if mc := c.memberlistConfig(testutil.Logger(t)); mc.GossipNodes != 5 {
		t.Fatalf("Adjust not applied: gossip nodes %d", mc.GossipNodes)
	}
}
