package gossip

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a Pool. Start from DefaultConfig and set NodeName,
// BindAddr and Meta.
type Config struct {
	// NodeName is this member's name in the pool; it must be unique in the
	// pool and stay the same across restarts of the same node.
	NodeName string

	// BindAddr is the "ip:port" gossip listens on, TCP and UDP. The host must
	// be an IP literal (empty means all interfaces); port 0 picks a free port,
	// which LocalAddr then reports.
	BindAddr string

	// AdvertiseAddr is the optional "ip:port" other members should use to
	// reach this one (NAT, several interfaces). Empty means: the bound
	// address, or a private interface address when bound to all interfaces.
	// Its port may be 0 ("same as bound port") and must be 0 when BindAddr's
	// port is 0, since memberlist then advertises the port it picked.
	AdvertiseAddr string

	// Meta is advertised to the pool from the start; SetMeta changes it.
	Meta Meta

	// SecretKey, if set, encrypts gossip with AES (16, 24 or 32 bytes). All
	// members of a pool must share it.
	SecretKey []byte

	// Logger receives the pool's logs and, through an adapter, memberlist's.
	// Nil means slog.Default(). A component=gossip attribute is added.
	Logger *slog.Logger

	// Fast selects aggressive timings (probe every 200 ms, gossip every 20 ms)
	// for tests on loopback. Never use it on a real network: it raises false
	// failure detection and bandwidth. False means memberlist's LAN defaults.
	Fast bool

	// ReapAfter is how long a member that failed or left stays in Members()
	// (as dead or left) before it is forgotten.
	ReapAfter time.Duration

	// BroadcastTimeout bounds how long SetMeta waits for the metadata update
	// to be gossiped, and how long Leave waits for each of its broadcasts.
	BroadcastTimeout time.Duration

	// JoinTimeout bounds Join when its context has no deadline.
	JoinTimeout time.Duration

	// JoinBackoffMin and JoinBackoffMax bound the exponential backoff between
	// Join attempts (full jitter: each wait is uniform in [0, bound)).
	JoinBackoffMin, JoinBackoffMax time.Duration

	// Adjust, if set, is called last with the memberlist configuration
	// built from the fields above and may change its timings (probe and
	// gossip intervals, fan-out, suspicion multiplier). It exists for the
	// gossip benchmark (test/bench/gossip), which compares profiles on
	// real pools; rollwave's agents and coordinators leave it nil. It must
	// not replace the delegates, the transport, the name or the addresses.
	Adjust func(*memberlist.Config)
}

// DefaultConfig returns a Config with production timings. NodeName, BindAddr
// and Meta still have to be set.
func DefaultConfig() Config {
	return Config{
		BindAddr: "0.0.0.0:7946",
		// A day keeps a failed host visible to operators and to the rollout
		// orchestrator across a whole release (bakes are hours at most) and an
		// overnight pause, without letting decommissioned hosts pile up.
		ReapAfter:        24 * time.Hour,
		BroadcastTimeout: 5 * time.Second,
		JoinTimeout:      time.Minute,
		JoinBackoffMin:   200 * time.Millisecond,
		JoinBackoffMax:   10 * time.Second,
	}
}

// Validate reports every invalid field, naming the field and the bad value.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("Config.NodeName is required"))
	}
	bindPort := -1
	if _, p, err := splitIPPort(c.BindAddr, true); err != nil {
		errs = append(errs, fmt.Errorf("Config.BindAddr %q: %w", c.BindAddr, err))
	} else {
		bindPort = p
	}
	if c.AdvertiseAddr != "" {
		if host, p, err := splitIPPort(c.AdvertiseAddr, true); err != nil {
			errs = append(errs, fmt.Errorf("Config.AdvertiseAddr %q: %w", c.AdvertiseAddr, err))
		} else if host == "" {
			errs = append(errs, fmt.Errorf("Config.AdvertiseAddr %q: host is required", c.AdvertiseAddr))
		} else if bindPort == 0 && p != 0 {
			errs = append(errs, fmt.Errorf("Config.AdvertiseAddr %q: port must be 0 when BindAddr's port is 0", c.AdvertiseAddr))
		}
	}
	if err := checkMeta(c.Meta); err != nil {
		errs = append(errs, fmt.Errorf("Config.Meta: %w", err))
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("Config.SecretKey: %d bytes, want 16, 24 or 32", len(c.SecretKey)))
	}
	for _, d := range []struct {
		field string
		val   time.Duration
	}{
		{"ReapAfter", c.ReapAfter},
		{"BroadcastTimeout", c.BroadcastTimeout},
		{"JoinTimeout", c.JoinTimeout},
		{"JoinBackoffMin", c.JoinBackoffMin},
		{"JoinBackoffMax", c.JoinBackoffMax},
	} {
		if d.val <= 0 {
			errs = append(errs, fmt.Errorf("Config.%s %v: must be positive", d.field, d.val))
		}
	}
	if c.JoinBackoffMin > 0 && c.JoinBackoffMax < c.JoinBackoffMin {
		errs = append(errs, fmt.Errorf("Config.JoinBackoffMax %v: must not be below JoinBackoffMin %v", c.JoinBackoffMax, c.JoinBackoffMin))
	}
	return errors.Join(errs...)
}

// splitIPPort parses "ip:port" where ip is empty or an IP literal (memberlist
// binds to IPs, not names).
func splitIPPort(s string, allowZero bool) (string, int, error) {
	if err := checkHostPort(s, allowZero); err != nil {
		return "", 0, err
	}
	host, port, _ := net.SplitHostPort(s)
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("host %q is not an IP address", host)
	}
	p, _ := strconv.Atoi(port)
	return host, p, nil
}

// memberlistConfig builds the memberlist configuration for a validated
// Config. The delegates are filled in by New.
func (c Config) memberlistConfig(logger *slog.Logger) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	if c.Fast {
		// Fast enough that a failed member is declared dead in about a
		// second, slack enough that a loaded test machine (race detector,
		// parallel tests) does not produce false suspicions.
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 20 * time.Millisecond
		mc.PushPullInterval = time.Second
		mc.SuspicionMult = 3
		mc.RetransmitMult = 4 // as on the LAN: loopback UDP drops packets under load too
		mc.GossipToTheDeadTime = time.Second
		mc.TCPTimeout = time.Second
	}
	mc.Name = c.NodeName
	host, port, _ := splitIPPort(c.BindAddr, true)
	if host == "" {
		host = "0.0.0.0"
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if c.AdvertiseAddr != "" {
		ahost, aport, _ := splitIPPort(c.AdvertiseAddr, true)
		if aport == 0 {
			aport = port
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ahost, aport
	}
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	// memberlist writes "[LEVEL] memberlist: ..." lines; the adapter turns
	// them into slog records. No flags: slog adds its own time.
	mc.Logger = log.New(&logWriter{logger: logger}, "", 0)
	if c.Adjust != nil {
		c.Adjust(mc)
	}
	return mc
}
