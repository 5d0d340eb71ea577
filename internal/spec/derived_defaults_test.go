package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// A default must never make a valid-looking spec invalid: a field the user
// did not write follows the one they did.
func TestDerivedDefaults(t *testing.T) {
	cases := []struct {
		name  string
		old   string // replaced by new in minimal.hcl; "" inserts extra before the closing brace
		new   string
		extra string
		check func(t *testing.T, r *Release)
	}{
		{
			name:  "bake first alone: min follows it",
			extra: "  bake {\n    first = \"10s\"\n  }\n",
			check: func(t *testing.T, r *Release) {
				if r.Bake.First != 10*time.Second || r.Bake.Min != 10*time.Second {
					t.Errorf("bake first/min = %s/%s, want 10s/10s", r.Bake.First, r.Bake.Min)
				}
			},
		},
		{
			name:  "bake first above the default min keeps the default min",
			extra: "  bake {\n    first = \"1h\"\n  }\n",
			check: func(t *testing.T, r *Release) {
				if r.Bake.Min != DefaultBakeMin {
					t.Errorf("bake min = %s, want %s", r.Bake.Min, DefaultBakeMin)
				}
			},
		},
		{
			name: "min_healthy_time alone: healthy_deadline follows it",
			old:  "  health {\n", new: "  health {\n    min_healthy_time = \"5m\"\n",
			check: func(t *testing.T, r *Release) {
				if r.Health.HealthyDeadline != 10*time.Minute {
					t.Errorf("healthy_deadline = %s, want 10m", r.Health.HealthyDeadline)
				}
			},
		},
		{
			name: "min_healthy_time near the cap: healthy_deadline capped",
			old:  "  health {\n", new: "  health {\n    min_healthy_time = \"20h\"\n",
			check: func(t *testing.T, r *Release) {
				if r.Health.HealthyDeadline != speccore.MaxHealthyWait {
					t.Errorf("healthy_deadline = %s, want %s", r.Health.HealthyDeadline, speccore.MaxHealthyWait)
				}
			},
		},
		{
			name: "short check interval alone: timeout follows it",
			old:  "      address = \"127.0.0.1:{{port}}\"\n", new: "      address = \"127.0.0.1:{{port}}\"\n      interval = \"500ms\"\n",
			check: func(t *testing.T, r *Release) {
				if c := r.Health.Checks[0]; c.Timeout != 500*time.Millisecond {
					t.Errorf("check timeout = %s, want 500ms", c.Timeout)
				}
			},
		},
		{
			name:  "short gate interval alone: timeout follows it",
			extra: "  gates {\n    gate \"http\" {\n      url = \"https://verdicts.example.com/rollwave\"\n      interval = \"5s\"\n    }\n  }\n",
			check: func(t *testing.T, r *Release) {
				if g := r.Gates.Metric[0]; g.Timeout != 5*time.Second {
					t.Errorf("gate timeout = %s, want 5s", g.Timeout)
				}
			},
		},
		{
			name: "nothing written: the plain defaults",
			check: func(t *testing.T, r *Release) {
				if r.Bake.Min != DefaultBakeMin || r.Health.HealthyDeadline != DefaultHealthyDeadline || r.Health.Checks[0].Timeout != DefaultCheckTimeout {
					t.Errorf("defaults moved: bake.min %s, healthy_deadline %s, timeout %s", r.Bake.Min, r.Health.HealthyDeadline, r.Health.Checks[0].Timeout)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := minimalSrc(t)
			if tc.old != "" {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("minimal.hcl does not contain %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			if tc.extra != "" {
				i := strings.LastIndex(src, "}")
				src = src[:i] + tc.extra + src[i:]
			}
			r, err := ParseRelease("spec.hcl", []byte(src))
			if err != nil {
				t.Fatalf("ParseRelease: %v", err)
			}
			tc.check(t, r)
		})
	}
}

// When the user writes both fields, the rule between them is checked as
// written: deriving never hides a contradiction the user made.
func TestDerivedDefaultsDoNotHideWrittenConflicts(t *testing.T) {
	src := minimalSrc(t)
	i := strings.LastIndex(src, "}")
	src = src[:i] + "  bake {\n    first = \"10s\"\n    min = \"1m\"\n  }\n" + src[i:]
	_, err := ParseRelease("spec.hcl", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "release.bake.min: must not exceed first (10s), got 1m0s") {
		t.Fatalf("err = %v, want the bake.min rule", err)
	}
}

func TestServerDerivedDefaults(t *testing.T) {
	cases := []struct {
		src   string
		check func(t *testing.T, c *ServerConfig)
	}{
		{"dev = true\nraft {\n  heartbeat_timeout = \"200ms\"\n}\n", func(t *testing.T, c *ServerConfig) {
			if c.Raft.LeaderLeaseTimeout != 200*time.Millisecond || c.Raft.ElectionTimeout != time.Second {
				t.Errorf("lease/election = %s/%s, want 200ms/1s", c.Raft.LeaderLeaseTimeout, c.Raft.ElectionTimeout)
			}
		}},
		{"dev = true\nraft {\n  heartbeat_timeout = \"3s\"\n}\n", func(t *testing.T, c *ServerConfig) {
			if c.Raft.LeaderLeaseTimeout != 500*time.Millisecond || c.Raft.ElectionTimeout != 3*time.Second {
				t.Errorf("lease/election = %s/%s, want 500ms/3s", c.Raft.LeaderLeaseTimeout, c.Raft.ElectionTimeout)
			}
		}},
		{"dev = true\nlimits {\n  rpc_max_conns = 50\n}\n", func(t *testing.T, c *ServerConfig) {
			if c.Limits.RPCMaxConnsPerClient != 50 {
				t.Errorf("rpc_max_conns_per_client = %d, want 50", c.Limits.RPCMaxConnsPerClient)
			}
		}},
	}
	for _, tc := range cases {
		c, err := ParseServerConfig("server.hcl", []byte(tc.src))
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		tc.check(t, c)
	}
	// Written on both sides, the rule holds as written.
	_, err := ParseServerConfig("server.hcl", []byte("dev = true\nraft {\n  heartbeat_timeout = \"200ms\"\n  leader_lease_timeout = \"300ms\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "raft.leader_lease_timeout: must not exceed heartbeat_timeout") {
		t.Fatalf("err = %v, want the lease rule", err)
	}
}
