package spec

import (
	"slices"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// Some defaults depend on a field the user may have written: a default must
// never turn a valid-looking spec into an invalid one by breaking a rule
// about a field the user did not write. `bake { first = "10s" }` alone used
// to be refused with "release.bake.min: must not exceed first (10s), got
// 5m0s". So, for each rule between two fields, the one left unwritten is
// derived from the written one:
//
//   - bake.min defaults to min(5m, bake.first);
//   - health.healthy_deadline defaults to max(2m, 2 × min_healthy_time),
//     at most MaxHealthyWait;
//   - traffic.step_time defaults to 1m only when traffic.steps is set;
//   - phases.shadow_sample (10%) and shadow_methods (GET, HEAD) default
//     only when phases.shadow is on;
//   - a check's timeout defaults to min(1s, its interval), and an external
//     gate's to min(10s, its interval);
//   - post_rollout.keep_old defaults to "hot" after slots.keep_old = "hot"
//     and to "stopped" after "cold" (a cold bake's old slot is stopped
//     already; "hot" would need it started again).
//
// When the user writes both fields, the rule is checked as written.

// applyDerivedDefaults adjusts the defaults of fields the source did not set
// (written reports whether a field path appeared in the source).
func applyDerivedDefaults(r *Release, written func(path string) bool) {
	if !written("release.bake.min") && r.Bake.First > 0 && r.Bake.Min > r.Bake.First {
		r.Bake.Min = r.Bake.First
	}
	if !written("release.health.healthy_deadline") {
		r.Health.HealthyDeadline = derivedHealthyDeadline(r.Health.MinHealthyTime)
	}
	if !written("release.post_rollout.keep_old") {
		r.PostRollout.KeepOld = speccore.WatchKeepHot
		if r.Slots.KeepOld == KeepCold {
			r.PostRollout.KeepOld = speccore.WatchKeepStopped
		}
	}
	if r.Phases.Shadow && !written("release.phases.shadow_sample") {
		r.Phases.ShadowSample = DefaultShadowSample
	}
	if r.Phases.Shadow && !written("release.phases.shadow_methods") {
		r.Phases.ShadowMethods = slices.Clone(DefaultShadowMethods)
	}
	if !written("release.traffic.step_time") && len(r.Traffic.Steps) > 0 {
		r.Traffic.StepTime = DefaultTrafficStepTime
	}
	for i := range r.Gates.Metric {
		g := &r.Gates.Metric[i]
		if !written(speccore.Index("release.gates.gate", i)+".timeout") && g.Interval > 0 && g.Timeout > g.Interval {
			g.Timeout = g.Interval
		}
	}
	for i := range r.Health.Checks {
		c := &r.Health.Checks[i]
		if !written(speccore.Index("release.health.check", i)+".timeout") && c.Interval > 0 && c.Timeout > c.Interval {
			c.Timeout = c.Interval
		}
	}
}

// derivedHealthyDeadline is healthy_deadline's default for a given
// min_healthy_time: the default 2m, or twice min_healthy_time when that is
// longer, so a host has as long again to become healthy as it must stay so;
// never above the cap MaxHealthyWait.
func derivedHealthyDeadline(minHealthy time.Duration) time.Duration {
	switch {
	case minHealthy <= DefaultHealthyDeadline/2:
		return DefaultHealthyDeadline
	case minHealthy >= speccore.MaxHealthyWait/2:
		return speccore.MaxHealthyWait
	default:
		return 2 * minHealthy
	}
}

// applyServerDerivedDefaults is applyDerivedDefaults for the server config:
//
//   - raft.leader_lease_timeout defaults to min(500ms, heartbeat_timeout);
//   - raft.election_timeout defaults to max(1s, heartbeat_timeout);
//   - limits.rpc_max_conns_per_client defaults to min(100, rpc_max_conns)
//     (rpc_max_conns = 0 means no cap).
func applyServerDerivedDefaults(c *ServerConfig, written func(path string) bool) {
	hb := c.Raft.HeartbeatTimeout
	if !written("raft.leader_lease_timeout") && hb > 0 && c.Raft.LeaderLeaseTimeout > hb {
		c.Raft.LeaderLeaseTimeout = hb
	}
	if !written("raft.election_timeout") && c.Raft.ElectionTimeout < hb {
		c.Raft.ElectionTimeout = hb
	}
	if !written("limits.rpc_max_conns_per_client") && c.Limits.RPCMaxConns > 0 && c.Limits.RPCMaxConnsPerClient > c.Limits.RPCMaxConns {
		c.Limits.RPCMaxConnsPerClient = c.Limits.RPCMaxConns
	}
}
