package speccore

import (
	"fmt"
	"time"
)

// Caps on the durations specs and configs may set. time.Duration holds up
// to about 292 years, and deadlines are stored as Unix nanoseconds, which
// end in 2262: a bake of "2562047h" (the largest Duration) put a deadline
// past that, which wrapped and "passed" the moment it was set. Each cap is
// far above any sane use and far below any overflow, so deadline
// arithmetic on validated values never saturates.
const (
	// MaxBakeDuration caps bake.first and bake.min. A bake longer than a
	// month is a hold waiting for an operator: use approval.after_phases
	// (or pause) instead.
	MaxBakeDuration = 30 * 24 * time.Hour

	// MaxHealthyWait caps health.min_healthy_time and
	// health.healthy_deadline: a host that needs more than a day to come
	// up healthy is failed, not slow, and keeps its phase stuck meanwhile.
	MaxHealthyWait = 24 * time.Hour

	// MaxCheckInterval caps a check's interval and timeout: checks an
	// hour apart would let a bake pass with no evidence at all.
	MaxCheckInterval = time.Hour

	// MaxIsolationTimeout caps rollback.isolation_timeout: an agent that
	// has heard nothing from any leader for a day should decide alone.
	MaxIsolationTimeout = 24 * time.Hour

	// MaxRollbackTime caps rollback.max_rollback_time: a rollback that
	// may take longer than ten minutes is no safety net.
	MaxRollbackTime = 10 * time.Minute

	// MaxHeartbeatInterval caps the agent's heartbeat_interval: the
	// leader judges reachability and health from heartbeats, so longer
	// gaps would make every host look unreachable.
	MaxHeartbeatInterval = 5 * time.Minute

	// MaxRaftTimeout caps raft's heartbeat, election, leader lease and
	// commit timeouts: each is how long a cluster may go without noticing
	// a dead leader or flushing a write (defaults 1s, 1s, 500ms, 50ms).
	MaxRaftTimeout = time.Minute

	// MaxSnapshotInterval caps raft.snapshot_interval (default 2m): a
	// day between checks lets the log grow without bound.
	MaxSnapshotInterval = 24 * time.Hour

	// MaxLatencyP99 caps gates.max_latency_p99: the proxy's latency
	// buckets end at about 168s, and a request gate above two minutes
	// judges a hung service, which the health checks already do.
	MaxLatencyP99 = 2 * time.Minute

	// MaxPostRolloutWatch caps post_rollout.watch: the release stays
	// active (no other release of the app starts) and the old slots are
	// kept for the whole window; a week is enough to see a weekly cycle.
	MaxPostRolloutWatch = 7 * 24 * time.Hour
)

// Within reports a duration that is not positive or exceeds max.
func Within(ps *Problems, p string, d, max time.Duration) {
	Positive(ps, p, d)
	AtMost(ps, p, d, max)
}

// AtMost reports a duration over max, naming the cap.
func AtMost(ps *Problems, p string, d, max time.Duration) {
	if d > max {
		ps.Add(p, "must be at most %s, got %s", DurationText(max), d)
	}
}

// DurationText writes a cap as operators write it, with whole days
// spelled out ("720h (30 days)").
func DurationText(d time.Duration) string {
	const day = 24 * time.Hour
	s := d.String()
	if d > day && d%day == 0 {
		return fmt.Sprintf("%s (%d days)", s, d/day)
	}
	return s
}
