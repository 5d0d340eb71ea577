package agent

import (
	"context"
	"fmt"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// isolationCheckEvery is how often the isolation watchdog looks.
const isolationCheckEvery = 250 * time.Millisecond

// isolationLoop reverts, on the agent's own authority, every app whose new
// slot is switched or baking in an unverified phase while no heartbeat ack
// has come from a leader for the release's isolation_timeout. The revert is
// recorded as REVERTED_ISOLATED and reported once contact returns.
func (a *Agent) isolationLoop(ctx context.Context) {
	t := time.NewTicker(isolationCheckEvery)
	defer t.Stop()
	// requested remembers the generation whose isolated revert was queued,
	// so the watchdog asks once, not on every tick.
	requested := map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		since := time.Since(time.Unix(0, a.lastAck.Load()))
		for _, app := range a.mgr.Apps() {
			st, ok := a.mgr.AppState(app)
			if !ok || st.Verified || st.Op != nil {
				continue
			}
			switch st.Phase {
			case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED.String(),
				rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING.String(),
				rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY.String():
			default:
				continue
			}
			if requested[app] == st.Generation {
				continue
			}
			limit := a.isolationTimeout(app, st.Generation)
			if since < limit {
				continue
			}
			requested[app] = st.Generation
			a.log.Warn("no contact with a leader in the middle of a bake; reverting alone",
				"app", app, "generation", st.Generation, "since_last_ack", since.Round(time.Millisecond), "isolation_timeout", limit)
			a.worker(app).revert(st.Generation,
				fmt.Sprintf("isolated: no heartbeat ack from a leader for %s (isolation_timeout %s)", since.Round(time.Millisecond), limit), true)
		}
	}
}

// isolationTimeout is the release's rollback.isolation_timeout for the
// app's current generation (default 30 s).
func (a *Agent) isolationTimeout(app string, gen uint64) time.Duration {
	if o, err := a.orders.load(app); err == nil && o.GetAssignment().GetGeneration() == gen {
		if ms := o.GetSpec().GetRollback().GetIsolationTimeoutMs(); ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return 30 * time.Second
}
