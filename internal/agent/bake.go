package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/fsutil"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// bakeRun is the bake monitor of one generation: it watches the new slot
// while it bakes, reports HEALTHY once every check has passed continuously
// for min_healthy_time, and asks for a revert when the checks keep failing
// (for three check intervals) or the slot is not healthy by
// healthy_deadline. Once the phase is verified it no longer reverts on its
// own: the leader decides from the heartbeats. All its timing is on the
// monotonic clock; healthy_deadline survives an agent restart as a
// persisted remaining duration (see deadlineRecord).
type bakeRun struct {
	gen    uint64
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	st health.Status
}

func (b *bakeRun) status() health.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// ensureBake starts the bake monitor of the generation the state says is
// baking, and stops one whose generation no longer bakes.
func (c *appCtl) ensureBake(st slot.State, o *rollwavev1.AssignmentOrder) {
	gen := st.Generation
	want := live(st) && o.GetAssignment().GetGeneration() == gen && st.Active != "" && st.Slots[st.Active] != nil
	c.mu.Lock()
	cur := c.bake
	c.mu.Unlock()
	if cur != nil && (!want || cur.gen != gen) {
		c.stopBake()
		cur = nil
	}
	if !want || cur != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.a.runCtx)
	b := &bakeRun{gen: gen, cancel: cancel, done: make(chan struct{})}
	c.mu.Lock()
	c.bake = b
	c.mu.Unlock()
	healthy := st.PhaseState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY
	c.log.Info("watching the bake", "generation", gen, "slot", st.Active, "already_healthy", healthy)
	go func() {
		defer close(b.done)
		steps := make(chan struct{})
		go func() {
			defer close(steps)
			c.runSteps(ctx, gen, o.GetSpec())
		}()
		c.runBake(ctx, b, o, st.Slots[st.Active].Port, st.Active, healthy)
		cancel() // the bake ended (revert asked, or stopped): so do the steps
		<-steps
	}()
}

func (c *appCtl) stopBake() {
	c.mu.Lock()
	b := c.bake
	c.bake = nil
	c.mu.Unlock()
	if b != nil {
		b.cancel()
		<-b.done
	}
}

// healthStatus is the bake monitor's latest view, for heartbeats.
func (c *appCtl) healthStatus() (health.Status, bool) {
	c.mu.Lock()
	b := c.bake
	c.mu.Unlock()
	if b == nil {
		return health.Status{}, false
	}
	return b.status(), true
}

func (c *appCtl) runBake(ctx context.Context, b *bakeRun, o *rollwavev1.AssignmentOrder, port int, slotName slot.Name, healthy bool) {
	spec := o.GetSpec()
	gen := b.gen
	clock := c.a.clock
	log := c.log.With("generation", gen, "slot", slotName)
	checks, err := c.checks(spec, port, slotName)
	if err != nil {
		c.requestRevert(gen, "bake: cannot build health checks: "+err.Error())
		return
	}
	minHealthy := sattime.Millis(spec.GetHealth().GetMinHealthyTimeMs())
	tr, err := health.NewTracker(health.TrackerConfig{Checks: checks, MinHealthyTime: minHealthy, Logger: c.a.log})
	if err != nil {
		c.requestRevert(gen, "bake: "+err.Error())
		return
	}
	tr.Start(ctx)
	defer tr.Stop()
	sub, unsubscribe := tr.Subscribe()
	defer unsubscribe()

	var grace time.Duration
	for _, ch := range checks {
		grace = max(grace, 3*ch.Interval)
	}
	if grace == 0 {
		grace = 3 * health.DefaultInterval
	}
	deadlineD := healthyDeadline(spec)
	dl := c.loadDeadline(gen, deadlineD)
	// checksOK: the checks passed for min_healthy_time (healthy_deadline
	// is met). healthy: reported so, which with weighted traffic steps
	// waits until the new slot has all the traffic.
	checksOK := healthy
	defer func() {
		if !checksOK {
			c.saveDeadline(gen, dl) // a restart goes on from here, not from zero
		}
	}()
	tick := time.NewTicker(grace / 3)
	defer tick.Stop()
	// The deadline fires on its own timer (Go timers run on the monotonic
	// clock), not at the next check tick.
	expire := time.NewTimer(dl.remaining(clock))
	defer expire.Stop()
	if checksOK {
		expire.Stop()
	}

	var failingSince time.Duration
	failing := false
	check := func(st health.Status) bool {
		b.mu.Lock()
		b.st = st
		b.mu.Unlock()
		if st.Healthy && !checksOK {
			checksOK = true
			c.clearBakeRecord()
		}
		if checksOK && !healthy && !c.stepping(gen) {
			healthy = true
			if err := c.a.mgr.MarkHealthy(c.app, gen, c.darkNoteOf(gen)); err != nil {
				log.Warn("mark healthy", "error", err)
			}
		}
		bad := false
		for _, ch := range st.Checks {
			bad = bad || (ch.Runs > 0 && !ch.Passing)
		}
		now := clock.Mono()
		if !bad {
			failing = false
			return true
		}
		if !failing {
			failing, failingSince = true, now
		}
		if now-failingSince < grace {
			return true
		}
		if cur, ok := c.a.mgr.AppState(c.app); ok && cur.Verified {
			return true // verified: report, do not revert alone
		}
		c.requestRevert(gen, fmt.Sprintf("health checks failing during bake for %s: %s", (now-failingSince).Round(time.Millisecond), st.LastError))
		return false
	}
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-sub:
			if !ok {
				return
			}
			if !check(st) {
				return
			}
		case <-expire.C:
			if !checksOK && dl.passed(clock) {
				c.requestRevert(gen, fmt.Sprintf("not healthy within healthy_deadline %s: %s", deadlineD, tr.Status().LastError))
				return
			}
		case <-tick.C:
			if !checksOK {
				if dl.passed(clock) {
					c.requestRevert(gen, fmt.Sprintf("not healthy within healthy_deadline %s: %s", deadlineD, tr.Status().LastError))
					return
				}
				if dl.wallStepped(clock) {
					log.Warn("the wall clock was stepped; healthy_deadline is kept on the monotonic clock", "remaining", dl.remaining(clock).Round(time.Millisecond))
					c.saveDeadline(gen, dl)
				}
			}
			if !check(tr.Status()) {
				return
			}
		}
	}
}

func healthyDeadline(spec *rollwavev1.ReleaseSpec) time.Duration {
	if ms := spec.GetHealth().GetHealthyDeadlineMs(); ms > 0 {
		return sattime.Millis(ms)
	}
	return slot.DefaultHealthyDeadline
}

// deadline is a deadline on the monotonic clock, with the wall-clock
// anchor it was last persisted with.
type deadline struct {
	at         time.Duration // monotonic
	anchorMono time.Duration
	anchorWall time.Time
}

func (d *deadline) passed(c Clock) bool             { return c.Mono() >= d.at }
func (d *deadline) remaining(c Clock) time.Duration { return max(0, d.at-c.Mono()) }

// wallStepped reports whether the wall clock moved more than a second
// away from the monotonic clock since the anchor.
func (d *deadline) wallStepped(c Clock) bool {
	skew := c.Now().Sub(d.anchorWall) - (c.Mono() - d.anchorMono)
	return skew > time.Second || skew < -time.Second
}

// deadlineRecord is a healthy_deadline persisted across agent restarts:
// the time that remained when it was written, and the wall time it was
// written at. A monotonic reading does not survive the process, so the
// time the agent was down is measured on the wall clock — the only span
// that is — bounded to [0, remaining].
type deadlineRecord struct {
	Generation     uint64 `json:"generation"`
	RemainingMs    int64  `json:"remaining_ms"`
	AnchorUnixNano int64  `json:"anchor_unix_nano"`
}

func (c *appCtl) deadlinePath() string { return filepath.Join(c.a.orders.dir, c.app+".deadline") }

// loadDeadline resumes generation gen's healthy_deadline from its record,
// or starts it (and persists it) when there is none.
func (c *appCtl) loadDeadline(gen uint64, full time.Duration) *deadline {
	now, wall := c.a.clock.Mono(), c.a.clock.Now()
	d := &deadline{at: sattime.Sum(now, full), anchorMono: now, anchorWall: wall} // saturating: full may be huge
	if b, err := os.ReadFile(c.deadlinePath()); err == nil {
		var r deadlineRecord
		if json.Unmarshal(b, &r) == nil && r.Generation == gen {
			rem := sattime.Millis(r.RemainingMs)
			down := min(max(0, wall.Sub(time.Unix(0, r.AnchorUnixNano))), rem)
			d.at = sattime.Sum(now, rem, -down)
			c.log.Info("healthy_deadline resumed after a restart", "generation", gen, "remaining", (rem - down).Round(time.Millisecond), "down_for", down.Round(time.Millisecond))
			c.saveDeadline(gen, d)
			return d
		}
	}
	c.saveDeadline(gen, d)
	return d
}

func (c *appCtl) saveDeadline(gen uint64, d *deadline) {
	d.anchorMono, d.anchorWall = c.a.clock.Mono(), c.a.clock.Now()
	b, _ := json.Marshal(deadlineRecord{Generation: gen, RemainingMs: d.remaining(c.a.clock).Milliseconds(), AnchorUnixNano: d.anchorWall.UnixNano()})
	if err := fsutil.WriteFileAtomic(c.deadlinePath(), b, 0o600); err != nil {
		c.log.Warn("persist healthy_deadline", "generation", gen, "error", err)
	}
}

func (c *appCtl) clearBakeRecord() {
	if err := os.Remove(c.deadlinePath()); err != nil && !os.IsNotExist(err) {
		c.log.Warn("remove healthy_deadline record", "error", err)
	}
}

// readyFunc checks a freshly started slot: every health check must pass
// once within healthy_deadline.
func (c *appCtl) readyFunc(spec *rollwavev1.ReleaseSpec) slot.ReadyFunc {
	return func(ctx context.Context, port int) error {
		checks, err := c.checks(spec, port, "")
		if err != nil {
			return err
		}
		tr, err := health.NewTracker(health.TrackerConfig{Checks: checks, MinHealthyTime: 0, Logger: c.a.log})
		if err != nil {
			return err
		}
		tr.Start(ctx)
		defer tr.Stop()
		deadline := healthyDeadline(spec)
		if err := tr.WaitHealthy(ctx, deadline); err != nil {
			return fmt.Errorf("not ready within healthy_deadline %s: %w", deadline, err)
		}
		return nil
	}
}

// checks turns the spec's checks into health checks for a slot port. A
// "unit" check asks the driver whether the slot's unit is running.
func (c *appCtl) checks(spec *rollwavev1.ReleaseSpec, port int, slotName slot.Name) ([]health.CheckWithInterval, error) {
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
			iv := sattime.Millis(hc.GetIntervalMs())
			if iv <= 0 {
				iv = health.DefaultInterval
			}
			app := c.app
			ch := health.NewFuncCheck("unit", func(ctx context.Context) error {
				st, err := c.a.cfg.Driver.Status(ctx, app, slotName)
				if err != nil {
					return err
				}
				if !st.Running() {
					return fmt.Errorf("unit %s is %s/%s", slot.UnitName(app, slotName), st.ActiveState, st.SubState)
				}
				return nil
			})
			out = append(out, health.CheckWithInterval{Check: ch, Interval: iv})
			continue
		}
		ch, iv, err := health.FromSpec(hc, r.Replace)
		if err != nil {
			return nil, err
		}
		out = append(out, health.CheckWithInterval{Check: ch, Interval: iv})
	}
	return c.a.prom.timeChecks(c.app, out), nil
}
