package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/sattime"
	"github.com/rollwave/rollwave/internal/spec/speccore"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The agent is a level-triggered reconciler, one per app (the pattern of
// coreos/fleet's agent/reconcile.go and of Kubernetes controllers):
//
//   - desired state: the newest order (a value, persisted before it is
//     acted on: generation, version, spec with its checks and deadlines),
//     the flags the leader sent (revert, verified, finalize), and the
//     contact state (how long since a leader ack, and gossip's view);
//   - current state: the slot state file (slot.Manager.AppState) and what
//     the unit driver reports;
//   - on every tick (Config.ReconcileEvery) and on every event (an order,
//     contact coming back, a bake monitor's verdict) plan computes the
//     ordered tasks that bring current to desired, each with its reason;
//     the first one runs, and a task that fails is retried with capped
//     exponential backoff and full jitter for as long as it is still
//     needed. Orders coalesce (the newest generation wins): nothing is
//     queued, so nothing can be dropped.

// appCtl reconciles one app.
type appCtl struct {
	a    *Agent
	app  string
	log  *slog.Logger
	kick chan struct{}

	mu    sync.Mutex
	want  desired
	retry map[string]*retryState
	bake  *bakeRun
	held  *holdEpisode
	// wake is how soon the contact watchdog wants the next pass (0: at
	// the next tick or event); see wakeIn.
	wake time.Duration
	// dark is the outcome of the last dark phase that passed, reported
	// with the generation's HEALTHY as its evidence.
	dark struct {
		gen  uint64
		note string
	}
}

// desired is what the leader (and the agent's own safety rules) want for
// the app.
type desired struct {
	// order is the newest assignment order received or persisted.
	order *rollwavev1.AssignmentOrder
	// refused is a generation the host refused (local policy, or the
	// order could not be persisted); it is reported once, not retried.
	refused uint64
	// revert, when set, is a revert of generation gen that must hold.
	revert *revertWant
	// finalize and verified are the newest generations so flagged.
	finalize uint64
	verified uint64
	// rehearse, when set, is a rollback rehearsal the leader asked for.
	rehearse *rehearseWant
}

type rehearseWant struct {
	gen         uint64
	maxRollback time.Duration
}

type revertWant struct {
	gen      uint64
	reason   string
	isolated bool
}

// holdEpisode is a bake kept through a control-plane outage
// (on_control_plane_loss = hold), reported when contact returns.
type holdEpisode struct {
	gen      uint64
	version  string
	silentAt time.Duration // monotonic time of the last ack before the outage
	heldAt   time.Duration // monotonic time the hold was decided
	evidence string
	// backAt is the monotonic time gossip first advertised a live leader
	// again during the hold (0: none seen since the hold began).
	backAt time.Duration
}

type retryState struct {
	b        *backoff.Backoff
	next     time.Duration // monotonic time of the next allowed attempt
	attempts int
}

// task is one step toward the desired state.
type task struct {
	key    string // identifies the task across ticks, for its backoff
	what   string
	reason string
	run    func(ctx context.Context) error
}

func newAppCtl(a *Agent, app string) *appCtl {
	c := &appCtl{a: a, app: app, log: a.log.With("app", app), kick: make(chan struct{}, 1), retry: map[string]*retryState{}}
	if o, err := a.orders.load(app); err == nil {
		c.want.order = o
	}
	return c
}

// poke asks for a reconcile pass now (never blocks).
func (c *appCtl) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *appCtl) run(ctx context.Context) {
	t := time.NewTicker(c.a.cfg.ReconcileEvery)
	defer t.Stop()
	// wake is the contact watchdog's own timer (plan sets it through
	// wakeIn): its moments fall between ticks.
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	defer c.stopBake()
	for {
		c.reconcileOnce(ctx)
		if d := c.takeWake(); d > 0 {
			wake.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		case <-wake.C:
		}
	}
}

// wakeIn asks for a pass d from now (the earliest asked since the last
// pass wins; d <= 0 asks nothing).
func (c *appCtl) wakeIn(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	if c.wake == 0 || d < c.wake {
		c.wake = d
	}
	c.mu.Unlock()
}

// takeWake returns and clears the wake plan asked for.
func (c *appCtl) takeWake() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.wake
	c.wake = 0
	return d
}

// maxTasksPerPass bounds one pass; each task changes the state, and the
// next tick goes on where a pass stopped.
const maxTasksPerPass = 8

func (c *appCtl) reconcileOnce(ctx context.Context) {
	for i := 0; i < maxTasksPerPass && ctx.Err() == nil; i++ {
		tasks := c.plan()
		if len(tasks) == 0 {
			return
		}
		t := tasks[0]
		if !c.due(t.key) {
			return
		}
		c.log.Info("reconcile: "+t.what, "task", t.key, "reason", t.reason)
		err := t.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			wait, n := c.failed(t.key)
			c.log.Warn("reconcile: task did not complete; retrying while it is still needed",
				"task", t.key, "reason", t.reason, "error", err, "attempt", n, "retry_in", wait.Round(time.Millisecond))
			return
		}
		c.mu.Lock()
		delete(c.retry, t.key)
		c.mu.Unlock()
	}
}

func (c *appCtl) due(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.retry[key]
	return !ok || c.a.clock.Mono() >= r.next
}

// failed schedules the next attempt of a task after capped exponential
// backoff with full jitter, and wakes the loop when it is due.
func (c *appCtl) failed(key string) (time.Duration, int) {
	c.mu.Lock()
	r, ok := c.retry[key]
	if !ok {
		r = &retryState{b: backoff.New(c.a.cfg.RetryMin, c.a.cfg.RetryMax)}
		c.retry[key] = r
	}
	wait := r.b.Next()
	r.next = c.a.clock.Mono() + wait
	r.attempts++
	n := r.attempts
	c.mu.Unlock()
	if wait < c.a.cfg.ReconcileEvery {
		time.AfterFunc(wait, c.poke)
	}
	return wait, n
}

func live(st slot.State) bool {
	switch st.PhaseState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
		return st.Op == nil
	}
	return false
}

// stopOldForWatch reports whether generation gen's release watches after
// its rollout with the old slots stopped (post_rollout.keep_old =
// "stopped"): a verified host then stops its old slot.
func stopOldForWatch(o *rollwavev1.AssignmentOrder, gen uint64) bool {
	pr := o.GetSpec().GetPostRollout()
	return o.GetAssignment().GetGeneration() == gen && pr.GetWatchMs() > 0 && pr.GetKeepOld() == string(speccore.WatchKeepStopped)
}

func reverted(s rollwavev1.AssignmentState) bool {
	return s == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED || s == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED
}

// plan compares desired with current and returns the tasks to run, in
// order, each with its reason. It also keeps the bake monitor in step
// with the state and reports a finished hold.
func (c *appCtl) plan() []task {
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	st, ok := c.a.mgr.AppState(c.app)
	var gen uint64
	if ok {
		gen = st.Generation
	}
	o := want.order
	og := o.GetAssignment().GetGeneration()

	// 1. A newer order: swap to it. A swap the agent was stopped in the
	// middle of is done again (a restart is not a failure).
	if o != nil && og != want.refused {
		switch {
		case og > gen:
			return []task{c.swapTask(o, fmt.Sprintf("start %s: order gen %d (version %s)", targetName(st, o), og, versionOf(o)), true)}
		case og == gen && st.Resume != "" && st.Op == nil:
			return []task{c.swapTask(o, fmt.Sprintf("start %s again: order gen %d was interrupted at step %s by an agent restart", targetName(st, o), og, st.Resume), false)}
		}
	}
	if !ok {
		c.stopBake()
		return nil
	}
	var tasks []task
	// 2. A revert that must hold (ordered, or decided here).
	if rw := want.revert; rw != nil {
		if rw.gen == gen && !reverted(st.PhaseState()) {
			tasks = append(tasks, c.revertTask(*rw, o))
		} else if rw.gen != gen {
			c.clearRevert(rw.gen)
		}
	}
	// 3. The leader's flags.
	if want.verified == gen && !st.Verified && st.Op == nil {
		tasks = append(tasks, task{key: fmt.Sprintf("verified/%d", gen), what: "mark verified",
			reason: fmt.Sprintf("leader: phase of gen %d verified", gen),
			run: func(context.Context) error {
				err := c.a.mgr.MarkVerified(c.app, gen)
				if errors.Is(err, slot.ErrStaleGeneration) || errors.Is(err, slot.ErrWrongState) {
					return nil
				}
				return err
			}})
	}
	if rh := want.rehearse; rh != nil {
		if t, ok := c.rehearseTask(*rh, st, o); ok {
			tasks = append(tasks, t)
		}
	}
	if want.verified == gen && st.Verified && st.KeepOld == "hot" && live(st) && stopOldForWatch(o, gen) {
		tasks = append(tasks, task{key: fmt.Sprintf("stop-old/%d", gen), what: "stop old slot",
			reason: fmt.Sprintf("leader: phase of gen %d verified; post_rollout.keep_old = stopped", gen),
			run: func(ctx context.Context) error {
				err := c.a.mgr.StopOld(ctx, c.app, gen)
				if errors.Is(err, slot.ErrStaleGeneration) || errors.Is(err, slot.ErrWrongState) {
					return nil
				}
				return err
			}})
	}
	if want.finalize == gen && live(st) {
		tasks = append(tasks, task{key: fmt.Sprintf("finalize/%d", gen), what: "finalize",
			reason: fmt.Sprintf("leader: finalize gen %d", gen),
			run: func(ctx context.Context) error {
				c.stopBake()
				err := c.a.mgr.Finalize(ctx, c.app, gen)
				if errors.Is(err, slot.ErrStaleGeneration) || errors.Is(err, slot.ErrWrongState) {
					return nil
				}
				return err
			}})
	}
	if len(tasks) > 0 {
		return tasks
	}
	// 4. Contact: a bake without a leader. The watchdog wakes this loop
	// on its own timer at the moments that matter (the probe's start, the
	// timeout), not at the next reconcile tick.
	now, lastAck := c.a.clock.Mono(), c.a.lastAckAt()
	since := now - lastAck
	limit := isolationTimeout(o, gen)
	if live(st) && !st.Verified {
		lead := c.a.probeDuration()
		w := watchdog(lastAck, now, limit, lead, 2*lead)
		c.wakeIn(w.wake)
		var v contactVerdict
		probed := false
		if w.probe {
			v, probed = c.a.probe.verdict(w.probeFrom, w.freshFrom)
		}
		if w.decide && !probed {
			// The probe is still out (it started late, or evidence from
			// before this silence or too old does not count); its end
			// kicks this loop.
			c.log.Debug("no leader ack for isolation_timeout; waiting for the isolation probe", "generation", gen,
				"since_last_ack", since.Round(time.Millisecond), "isolation_timeout", limit)
		} else if w.decide {
			if wait, ok := c.leaderBack(gen, v, limit); ok {
				// The control plane is coming back: gossip advertises a
				// leader again but the session has no ack from it yet.
				// That is not isolation until it lasts isolation_timeout.
				c.log.Debug("leader back in gossip after a hold; waiting for its ack", "generation", gen, "wait", wait.Round(time.Millisecond), "evidence", v.evidence)
				c.wakeIn(wait)
				c.ensureBake(st, o)
				return nil
			}
			if !v.controlPlaneDown || controlPlaneLoss(o, gen) == speccore.ControlPlaneLossRevert {
				reason := fmt.Sprintf("revert: no leader ack for %s (isolation_timeout %s); %s", since.Round(time.Millisecond), limit, v.evidence)
				if v.controlPlaneDown {
					reason = fmt.Sprintf("revert: %s, on_control_plane_loss = revert; no leader ack for %s (isolation_timeout %s)", v.evidence, since.Round(time.Millisecond), limit)
				}
				rw := revertWant{gen: gen, reason: reason, isolated: true}
				c.mu.Lock()
				if c.want.revert == nil || c.want.revert.gen != gen {
					c.want.revert = &rw
				}
				c.mu.Unlock()
				c.log.Warn("no contact with a leader in the middle of a bake; reverting alone", "generation", gen,
					"since_last_ack", since.Round(time.Millisecond), "isolation_timeout", limit, "evidence", v.evidence)
				return []task{c.revertTask(rw, o)}
			}
			c.noteHold(gen, versionOf(o), since, v.evidence)
		}
	}
	if since < limit {
		c.reportHold()
	}
	// 5. The bake monitor follows the state.
	c.ensureBake(st, o)
	return nil
}

func targetName(st slot.State, o *rollwavev1.AssignmentOrder) string {
	switch o.GetAssignment().GetTargetSlot() {
	case rollwavev1.Slot_SLOT_BLUE:
		return string(slot.Blue)
	case rollwavev1.Slot_SLOT_GREEN:
		return string(slot.Green)
	}
	if st.Resume != "" && st.To != "" {
		return string(st.To)
	}
	if st.Active != "" {
		return string(st.Active.Other())
	}
	return string(slot.Blue)
}

func versionOf(o *rollwavev1.AssignmentOrder) string {
	if v := o.GetAssignment().GetVersion(); v != "" {
		return v
	}
	return o.GetSpec().GetVersion()
}

// isolationTimeout is the release's rollback.isolation_timeout for
// generation gen (default 30 s).
func isolationTimeout(o *rollwavev1.AssignmentOrder, gen uint64) time.Duration {
	if o.GetAssignment().GetGeneration() == gen {
		if ms := o.GetSpec().GetRollback().GetIsolationTimeoutMs(); ms > 0 {
			return sattime.Millis(ms)
		}
	}
	return speccore.DefaultIsolationTimeout
}

// controlPlaneLoss is the release's rollback.on_control_plane_loss
// (empty, or an order the agent does not have: hold).
func controlPlaneLoss(o *rollwavev1.AssignmentOrder, gen uint64) speccore.ControlPlaneLoss {
	if o.GetAssignment().GetGeneration() == gen && o.GetSpec().GetRollback().GetOnControlPlaneLoss() == string(speccore.ControlPlaneLossRevert) {
		return speccore.ControlPlaneLossRevert
	}
	return speccore.ControlPlaneLossHold
}

func (c *appCtl) refuse(gen uint64, reason string) {
	c.a.progress.push(&rollwavev1.AssignmentProgress{App: c.app, Generation: gen,
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, Reason: reason, TimeUnixNano: c.a.clock.Now().UnixNano()})
	c.mu.Lock()
	c.want.refused = gen
	c.mu.Unlock()
}

// swapTask runs the swap to o. fresh: the swap has not started yet (not
// one interrupted by a restart), so a freeze window can still hold it.
func (c *appCtl) swapTask(o *rollwavev1.AssignmentOrder, reason string, fresh bool) task {
	gen := o.GetAssignment().GetGeneration()
	return task{key: fmt.Sprintf("swap/%d", gen), what: "swap", reason: reason, run: func(ctx context.Context) error {
		log := c.log.With("generation", gen, "release_id", o.GetAssignment().GetReleaseId())
		if err := c.a.cfg.Policy.Check(o.GetSpec()); err != nil {
			log.Warn("assignment refused by local policy", "error", err)
			c.refuse(gen, "refused by the host's local policy: "+err.Error())
			return nil
		}
		if fresh {
			if why := c.a.freezeCheck(o, log); why != "" {
				log.Warn("assignment refused: inside a freeze window", "reason", why)
				c.refuse(gen, why)
				return nil
			}
		}
		if err := c.a.orders.save(o); err != nil {
			log.Error("persist assignment order; refusing it", "error", err)
			c.refuse(gen, "agent cannot persist the order: "+err.Error())
			return nil
		}
		c.stopBake()
		c.clearBakeRecord()
		err := c.a.mgr.Swap(ctx, o.GetAssignment(), o.GetSpec(), c.readyFunc(o.GetSpec()))
		switch {
		case err == nil, errors.Is(err, slot.ErrInterrupted), ctx.Err() != nil:
			return nil
		case errors.Is(err, slot.ErrStaleGeneration):
			log.Info("order older than what the host runs; ignoring it", "error", err)
			return nil
		}
		if st, ok := c.a.mgr.AppState(c.app); ok && st.Generation == gen && st.Op == nil &&
			(st.PhaseState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED || reverted(st.PhaseState())) {
			// The swap itself failed (or its post_switch hook reverted
			// the host) and said so; the leader decides.
			log.Warn("swap did not complete", "error", err, "state", st.Phase)
			return nil
		}
		return err
	}}
}

func (c *appCtl) revertTask(rw revertWant, o *rollwavev1.AssignmentOrder) task {
	return task{key: fmt.Sprintf("revert/%d", rw.gen), what: "revert", reason: rw.reason, run: func(ctx context.Context) error {
		c.stopBake()
		var ready slot.ReadyFunc
		if o.GetAssignment().GetGeneration() == rw.gen && o.GetSpec() != nil {
			ready = c.readyFunc(o.GetSpec())
		}
		err := c.a.mgr.RevertChecked(ctx, c.app, rw.reason, rw.isolated, ready)
		switch {
		case err == nil:
			c.clearRevert(rw.gen)
			return nil
		case errors.Is(err, slot.ErrInterrupted), ctx.Err() != nil:
			return nil
		case errors.Is(err, slot.ErrNothingToRevert):
			// The app's first deploy on this host: there is nothing to go
			// back to. Say so, so the leader counts the host as failed
			// instead of waiting for a revert that cannot happen.
			c.log.Warn("cannot revert the first deploy of the app; reporting it failed", "reason", rw.reason)
			c.a.progress.push(&rollwavev1.AssignmentProgress{App: c.app, Generation: rw.gen,
				State:        rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED,
				Reason:       rw.reason + "; first deploy of the app on this host: no old version to go back to, the new one keeps running",
				TimeUnixNano: c.a.clock.Now().UnixNano()})
			c.clearRevert(rw.gen)
			return nil
		case errors.Is(err, slot.ErrVerified):
			c.log.Info("phase verified meanwhile; not reverting alone", "generation", rw.gen)
			c.clearRevert(rw.gen)
			return nil
		}
		return err
	}}
}

func (c *appCtl) clearRevert(gen uint64) {
	c.mu.Lock()
	if c.want.revert != nil && c.want.revert.gen == gen {
		c.want.revert = nil
	}
	c.mu.Unlock()
}

// requestRevert is how a bake monitor asks for a revert.
func (c *appCtl) requestRevert(gen uint64, reason string) {
	c.mu.Lock()
	if c.want.revert == nil || c.want.revert.gen != gen {
		c.want.revert = &revertWant{gen: gen, reason: reason}
	}
	c.mu.Unlock()
	c.poke()
}

// noteHold records that the bake of gen is kept through a control-plane
// outage.
func (c *appCtl) noteHold(gen uint64, version string, since time.Duration, evidence string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil && c.held.gen == gen {
		return
	}
	now := c.a.clock.Mono()
	c.held = &holdEpisode{gen: gen, version: version, silentAt: now - since, heldAt: now, evidence: evidence}
	c.log.Warn("no leader and the control plane is down; holding the new version while its checks pass",
		"generation", gen, "on_control_plane_loss", "hold", "since_last_ack", since.Round(time.Millisecond), "evidence", evidence)
}

// leaderBack decides for a host holding gen through a control-plane
// outage whose gossip now advertises a live leader again, while its
// session has no ack yet (the coordinators restarted; the agent is still
// reconnecting, or the new leader is still taking its hello). Without
// this, that moment reads as "peers see a live leader, I have no ack":
// isolated, and the host reverted the version it had held the whole
// outage just as the control plane returned (seen on real hosts). The
// host keeps holding until isolation_timeout has passed since it first
// saw the leader again; then, still without an ack, it is isolated. It
// reports how long is left, and ok=false when the rule does not apply
// (no hold, the leader not seen, or the wait is over). A verdict of
// control plane down again resets the wait.
func (c *appCtl) leaderBack(gen uint64, v contactVerdict, limit time.Duration) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.held
	if h == nil || h.gen != gen {
		return 0, false
	}
	if !v.leaderSeen {
		if v.controlPlaneDown {
			h.backAt = 0
		}
		return 0, false
	}
	now := c.a.clock.Mono()
	if h.backAt == 0 {
		h.backAt = now
	}
	if left := limit - (now - h.backAt); left > 0 {
		return left, true
	}
	return 0, false
}

// reportHold reports a hold once contact is back.
func (c *appCtl) reportHold() {
	c.mu.Lock()
	h := c.held
	c.held = nil
	c.mu.Unlock()
	if h == nil {
		return
	}
	now := c.a.clock.Mono()
	// The coordinator reads "held version V for D while" for the event's
	// held_for evidence (internal/coordinator/dispatch.go heldFor).
	reason := fmt.Sprintf("held version %s for %s while the control plane was down (no leader for %s; %s)",
		h.version, (now - h.heldAt).Round(time.Millisecond), (now - h.silentAt).Round(time.Millisecond), h.evidence)
	c.log.Info("contact is back after a hold", "generation", h.gen, "reason", reason)
	c.a.progress.push(&rollwavev1.AssignmentProgress{App: c.app, Generation: h.gen,
		State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HELD_CONTROL_PLANE_DOWN, Reason: reason, TimeUnixNano: c.a.clock.Now().UnixNano()})
}

// holding reports whether the app is in a hold right now.
func (c *appCtl) holding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held != nil
}

// setOrder takes an assignment order. Orders coalesce: a newer
// generation replaces an older one not yet acted on.
func (c *appCtl) setOrder(o *rollwavev1.AssignmentOrder) {
	gen := o.GetAssignment().GetGeneration()
	if st, ok := c.a.mgr.AppState(c.app); ok && gen <= st.Generation && !(gen == st.Generation && st.Resume != "") {
		if gen == st.Generation {
			// Already applied: report where it is, do not redo.
			if r, ok := st.LastResult(); ok && r.Generation == gen {
				c.a.progress.push(&rollwavev1.AssignmentProgress{App: c.app, Generation: gen, State: r.AssignmentState(),
					Reason: r.Reason, TimeUnixNano: c.a.clock.Now().UnixNano()})
			}
			c.mu.Lock()
			if c.want.order.GetAssignment().GetGeneration() < gen {
				c.want.order = o // e.g. the order file was lost: keep its checks
			}
			c.mu.Unlock()
		}
		return
	}
	c.mu.Lock()
	if gen > c.want.order.GetAssignment().GetGeneration() || (gen == c.want.order.GetAssignment().GetGeneration() && c.want.refused != gen) {
		c.want.order = o
	}
	c.mu.Unlock()
	c.poke()
}

func (c *appCtl) setRevertOrder(gen uint64, reason string) {
	if gen == 0 {
		if st, ok := c.a.mgr.AppState(c.app); ok {
			gen = st.Generation
		}
	}
	c.mu.Lock()
	c.want.revert = &revertWant{gen: gen, reason: reason}
	c.mu.Unlock()
	c.poke()
}

func (c *appCtl) setFinalize(gen uint64) {
	c.mu.Lock()
	c.want.finalize = max(c.want.finalize, gen)
	c.mu.Unlock()
	c.poke()
}

// setRehearse takes a rehearse order; a newer generation's replaces an
// older one.
func (c *appCtl) setRehearse(gen uint64, maxRollback time.Duration) {
	c.mu.Lock()
	if c.want.rehearse == nil || c.want.rehearse.gen <= gen {
		c.want.rehearse = &rehearseWant{gen: gen, maxRollback: maxRollback}
	}
	c.mu.Unlock()
	c.poke()
}

// rehearseTask rehearses the rollback of the baking generation and reports
// the result (a repeated order gets the recorded one). An order for a
// generation the host is not baking is answered as failed, with the
// host's state, so the leader does not wait for it.
func (c *appCtl) rehearseTask(rh rehearseWant, st slot.State, o *rollwavev1.AssignmentOrder) (task, bool) {
	clear := func() {
		c.mu.Lock()
		if c.want.rehearse != nil && c.want.rehearse.gen == rh.gen {
			c.want.rehearse = nil
		}
		c.mu.Unlock()
	}
	report := func(r *rollwavev1.RehearsalResult) {
		r.App, r.Generation = c.app, rh.gen
		if r.GetTimeUnixNano() == 0 {
			r.TimeUnixNano = c.a.clock.Now().UnixNano()
		}
		c.a.rehearsals.push(r)
		clear()
	}
	switch {
	case rh.gen < st.Generation:
		clear() // stale: the leader has moved on
		return task{}, false
	case rh.gen > st.Generation || (!live(st) && st.Op == nil):
		report(&rollwavev1.RehearsalResult{RolledForward: rh.gen <= st.Generation,
			Reason: fmt.Sprintf("host is at generation %d (%s), not baking generation %d", st.Generation, st.Phase, rh.gen)})
		return task{}, false
	case st.Op != nil:
		return task{}, false // after the operation in flight
	}
	var ready slot.ReadyFunc
	if o.GetAssignment().GetGeneration() == rh.gen && o.GetSpec() != nil {
		ready = c.readyFunc(o.GetSpec())
	}
	fresh := st.Rehearsal == nil || st.Rehearsal.Generation != rh.gen
	return task{key: fmt.Sprintf("rehearse/%d", rh.gen), what: "rehearse the rollback",
		reason: fmt.Sprintf("leader: rehearse the rollback of gen %d (max_rollback_time %s)", rh.gen, rh.maxRollback),
		run: func(ctx context.Context) error {
			r, err := c.a.mgr.Rehearse(ctx, c.app, rh.gen, rh.maxRollback, ready)
			switch {
			case errors.Is(err, slot.ErrInterrupted), ctx.Err() != nil:
				return nil // the restart's reconcile rolls forward and records it
			case errors.Is(err, slot.ErrStaleGeneration), errors.Is(err, slot.ErrWrongState):
				report(&rollwavev1.RehearsalResult{RolledForward: true, Reason: err.Error()})
				return nil
			case err != nil:
				return err
			}
			if fresh && r.RollbackMS > 0 {
				c.a.prom.rehearsal.WithLabelValues(c.app).Observe(float64(r.RollbackMS) / 1000)
			}
			c.log.Info("rehearsal result", "generation", rh.gen, "ok", r.OK, "rollback_ms", r.RollbackMS, "reason", r.Reason)
			report(r.Proto(c.app))
			return nil
		}}, true
}

func (c *appCtl) setVerified(gen uint64) {
	c.mu.Lock()
	c.want.verified = max(c.want.verified, gen)
	c.mu.Unlock()
	c.poke()
}
