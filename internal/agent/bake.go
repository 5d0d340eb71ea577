package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// bakeMonitor watches the new slot of a generation while it bakes: it
// reports HEALTHY once every check has passed continuously for
// min_healthy_time, and reverts at once when the checks keep failing (for
// three check intervals) or the slot is not healthy by healthy_deadline.
// Once the phase is verified it no longer reverts on its own: the leader
// decides from the heartbeats.
type bakeMonitor struct {
	w     *appWorker
	order *rollwavev1.AssignmentOrder
	port  int
	slot  slot.Name

	mu sync.Mutex
	st health.Status
}

func (m *bakeMonitor) status() health.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

func (m *bakeMonitor) run(ctx context.Context) {
	w := m.w
	spec := m.order.GetSpec()
	gen := m.order.GetAssignment().GetGeneration()
	log := w.a.log.With("app", w.app, "generation", gen, "slot", m.slot)
	checks, err := w.checks(spec, m.port, m.slot)
	if err != nil {
		w.revert(gen, "bake: cannot build health checks: "+err.Error(), false)
		return
	}
	minHealthy := time.Duration(spec.GetHealth().GetMinHealthyTimeMs()) * time.Millisecond
	tr, err := health.NewTracker(health.TrackerConfig{Checks: checks, MinHealthyTime: minHealthy, Logger: w.a.log})
	if err != nil {
		w.revert(gen, "bake: "+err.Error(), false)
		return
	}
	tr.Start(ctx)
	defer tr.Stop()
	sub, unsubscribe := tr.Subscribe()
	defer unsubscribe()

	var grace time.Duration
	for _, c := range checks {
		grace = max(grace, 3*c.Interval)
	}
	if grace == 0 {
		grace = 3 * health.DefaultInterval
	}
	deadlineD := time.Duration(spec.GetHealth().GetHealthyDeadlineMs()) * time.Millisecond
	if deadlineD <= 0 {
		deadlineD = 2 * time.Minute
	}
	deadline := time.NewTimer(deadlineD)
	defer deadline.Stop()
	tick := time.NewTicker(grace / 3)
	defer tick.Stop()

	healthy := false
	var failingSince time.Time
	check := func(st health.Status) bool {
		m.mu.Lock()
		m.st = st
		m.mu.Unlock()
		if st.Healthy && !healthy {
			healthy = true
			if err := w.a.mgr.MarkHealthy(w.app, gen); err != nil {
				log.Warn("mark healthy", "error", err)
			}
		}
		failing := false
		for _, c := range st.Checks {
			failing = failing || (c.Runs > 0 && !c.Passing)
		}
		if !failing {
			failingSince = time.Time{}
			return true
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) < grace {
			return true
		}
		if cur, ok := w.a.mgr.AppState(w.app); ok && cur.Verified {
			return true // verified: report, do not revert alone
		}
		w.revert(gen, fmt.Sprintf("health checks failing during bake for %s: %s", time.Since(failingSince).Round(time.Millisecond), st.LastError), false)
		return false
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			if !healthy {
				w.revert(gen, fmt.Sprintf("not healthy within healthy_deadline %s: %s", deadlineD, tr.Status().LastError), false)
				return
			}
		case st, ok := <-sub:
			if !ok {
				return
			}
			if !check(st) {
				return
			}
		case <-tick.C:
			if !check(tr.Status()) {
				return
			}
		}
	}
}

// resumeBakes restarts bake monitors for apps that were baking when the
// agent stopped, from the state file and the stored order.
func (a *Agent) resumeBakes(ctx context.Context) {
	for app, o := range a.orders.all() {
		st, ok := a.mgr.AppState(app)
		if !ok || st.Generation != o.GetAssignment().GetGeneration() {
			continue
		}
		switch st.Phase {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED.String(), rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING.String(),
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY.String():
			a.log.Info("resuming bake after restart", "app", app, "generation", st.Generation)
			a.worker(app).startBake(o)
		}
	}
}
