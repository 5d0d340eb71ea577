package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// appWorker serialises everything done to one app: swaps, reverts,
// finalizes. Tasks are queued; the bake monitor of the current generation
// runs beside it and asks for a revert through the same queue.
type appWorker struct {
	a     *Agent
	app   string
	tasks chan func(ctx context.Context)
	ctx   context.Context
	stopF context.CancelFunc
	done  chan struct{}

	mu         sync.Mutex
	bakeCancel context.CancelFunc
	bake       *bakeMonitor
}

func newAppWorker(parent context.Context, a *Agent, app string) *appWorker {
	ctx, cancel := context.WithCancel(parent)
	w := &appWorker{a: a, app: app, tasks: make(chan func(context.Context), 32), ctx: ctx, stopF: cancel, done: make(chan struct{})}
	go w.run()
	return w
}

func (w *appWorker) run() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			w.stopBake()
			return
		case t := <-w.tasks:
			t(w.ctx)
		}
	}
}

func (w *appWorker) stop() {
	w.stopF()
	<-w.done
}

// submit queues a task; a full queue drops it with a log line (the leader
// resends orders on the next session, and the state file is the truth).
func (w *appWorker) submit(what string, t func(ctx context.Context)) {
	select {
	case w.tasks <- t:
	default:
		w.a.log.Warn("task queue full; dropping task", "app", w.app, "task", what)
	}
}

// assign runs an assignment order: swap into the idle slot, then bake.
func (w *appWorker) assign(o *rollwavev1.AssignmentOrder) {
	w.submit("assign", func(ctx context.Context) {
		a := o.GetAssignment()
		log := w.a.log.With("app", w.app, "generation", a.GetGeneration(), "release_id", a.GetReleaseId())
		if st, ok := w.a.mgr.AppState(w.app); ok && st.Generation >= a.GetGeneration() {
			// Already applied (or newer): report where it is, do not redo.
			if err := w.a.mgr.Swap(ctx, a, o.GetSpec(), nil); err != nil && !errors.Is(err, slot.ErrStaleGeneration) {
				log.Warn("re-report of an applied generation", "error", err)
			}
			return
		}
		if err := w.a.cfg.Policy.Check(o.GetSpec()); err != nil {
			log.Warn("assignment refused by local policy", "error", err)
			w.a.progress.push(&rollwavev1.AssignmentProgress{App: w.app, Generation: a.GetGeneration(),
				State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, Reason: "refused by the host's local policy: " + err.Error(),
				TimeUnixNano: time.Now().UnixNano()})
			return
		}
		if err := w.a.orders.save(o); err != nil {
			log.Error("persist assignment order; refusing it", "error", err)
			w.a.progress.push(&rollwavev1.AssignmentProgress{App: w.app, Generation: a.GetGeneration(),
				State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, Reason: "agent cannot persist the order: " + err.Error(),
				TimeUnixNano: time.Now().UnixNano()})
			return
		}
		w.stopBake()
		spec := o.GetSpec()
		log.Info("swap starting", "version", a.GetVersion())
		err := w.a.mgr.Swap(ctx, a, spec, w.readyFunc(spec))
		if err != nil {
			log.Warn("swap did not complete", "error", err)
			return
		}
		w.startBake(o)
	})
}

// readyFunc checks a freshly started slot: every health check must pass
// once within healthy_deadline.
func (w *appWorker) readyFunc(spec *rollwavev1.ReleaseSpec) slot.ReadyFunc {
	return func(ctx context.Context, port int) error {
		checks, err := w.checks(spec, port, "")
		if err != nil {
			return err
		}
		tr, err := health.NewTracker(health.TrackerConfig{Checks: checks, MinHealthyTime: 0, Logger: w.a.log})
		if err != nil {
			return err
		}
		tr.Start(ctx)
		defer tr.Stop()
		deadline := time.Duration(spec.GetHealth().GetHealthyDeadlineMs()) * time.Millisecond
		if deadline <= 0 {
			deadline = 2 * time.Minute
		}
		if err := tr.WaitHealthy(ctx, deadline); err != nil {
			return fmt.Errorf("not ready within healthy_deadline %s: %w", deadline, err)
		}
		return nil
	}
}

// revert takes the app back to its old slot.
func (w *appWorker) revert(gen uint64, reason string, isolated bool) {
	w.submit("revert", func(ctx context.Context) {
		st, ok := w.a.mgr.AppState(w.app)
		if !ok {
			return
		}
		if gen != 0 && st.Generation != gen {
			w.a.log.Info("revert order for another generation; ignoring", "app", w.app, "ordered", gen, "current", st.Generation)
			return
		}
		w.stopBake()
		err := w.a.mgr.Revert(ctx, w.app, reason, isolated)
		switch {
		case errors.Is(err, slot.ErrNothingToRevert):
			// The app's first deploy on this host: there is nothing to go
			// back to. Say so, so the leader counts the host as failed
			// instead of waiting for a revert that cannot happen.
			w.a.log.Warn("cannot revert the first deploy of the app; reporting it failed", "app", w.app, "reason", reason)
			w.a.progress.push(&rollwavev1.AssignmentProgress{App: w.app, Generation: st.Generation,
				State:        rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED,
				Reason:       reason + "; first deploy of the app on this host: no old version to go back to, the new one keeps running",
				TimeUnixNano: time.Now().UnixNano()})
		case err != nil:
			w.a.log.Warn("revert did not complete", "app", w.app, "error", err)
		}
	})
}

func (w *appWorker) finalize(gen uint64) {
	w.submit("finalize", func(ctx context.Context) {
		w.stopBake()
		if err := w.a.mgr.Finalize(ctx, w.app, gen); err != nil {
			w.a.log.Warn("finalize", "app", w.app, "generation", gen, "error", err)
		}
	})
}

func (w *appWorker) verified(gen uint64) {
	w.submit("verified", func(ctx context.Context) {
		if err := w.a.mgr.MarkVerified(w.app, gen); err != nil {
			w.a.log.Warn("mark verified", "app", w.app, "generation", gen, "error", err)
		}
	})
}

func (w *appWorker) startBake(o *rollwavev1.AssignmentOrder) {
	st, ok := w.a.mgr.AppState(w.app)
	if !ok || st.Active == "" || st.Slots[st.Active] == nil {
		return
	}
	port := st.Slots[st.Active].Port
	ctx, cancel := context.WithCancel(w.ctx)
	m := &bakeMonitor{w: w, order: o, port: port, slot: st.Active}
	w.mu.Lock()
	w.bakeCancel, w.bake = cancel, m
	w.mu.Unlock()
	go m.run(ctx)
}

func (w *appWorker) stopBake() {
	w.mu.Lock()
	cancel := w.bakeCancel
	w.bakeCancel, w.bake = nil, nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// healthStatus is the bake monitor's latest view, for heartbeats.
func (w *appWorker) healthStatus() (health.Status, bool) {
	w.mu.Lock()
	m := w.bake
	w.mu.Unlock()
	if m == nil {
		return health.Status{}, false
	}
	return m.status(), true
}

// checks turns the spec's checks into health checks for a slot port. A
// "unit" check asks the driver whether the slot's unit is running.
func (w *appWorker) checks(spec *rollwavev1.ReleaseSpec, port int, slotName slot.Name) ([]health.CheckWithInterval, error) {
	r := strings.NewReplacer(
		"{{port}}", strconv.Itoa(port),
		"{{slot}}", string(slotName),
		"{{app}}", spec.GetApp(),
		"{{version}}", spec.GetVersion(),
	)
	var out []health.CheckWithInterval
	for _, hc := range spec.GetHealth().GetChecks() {
		if hc.GetKind() == "unit" {
			if slotName == "" {
				continue // readiness: the driver already waited for the unit
			}
			iv := time.Duration(hc.GetIntervalMs()) * time.Millisecond
			if iv <= 0 {
				iv = health.DefaultInterval
			}
			app := w.app
			c := health.NewFuncCheck("unit", func(ctx context.Context) error {
				st, err := w.a.cfg.Driver.Status(ctx, app, slotName)
				if err != nil {
					return err
				}
				if !st.Running() {
					return fmt.Errorf("unit %s is %s/%s", slot.UnitName(app, slotName), st.ActiveState, st.SubState)
				}
				return nil
			})
			out = append(out, health.CheckWithInterval{Check: c, Interval: iv})
			continue
		}
		c, iv, err := health.FromSpec(hc, r.Replace)
		if err != nil {
			return nil, err
		}
		out = append(out, health.CheckWithInterval{Check: c, Interval: iv})
	}
	return out, nil
}
