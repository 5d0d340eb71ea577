package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The dark phase (phases.dark) runs here, on the host, before the first
// weighted step or the switch to 100 %: the swap's switch step left every
// user request on the old slot (a split of weight 0) with the new slot
// running. The bake monitor's health checks — synthetic requests
// included — already run against the new slot and revert the host when
// they fail; this loop waits out `dark`, and with shadow traffic judges
// the new slot's answers to mirrored requests against the old slot's
// answers to the same requests, as a weighted step is judged. A pass
// moves the weight to the first step (or 100); a failure reverts the
// host before any user request has reached the new version.

// DarkLimit is the longest a dark phase of length dark can last on a
// host: while the new slot is not yet healthy, or the shadow comparison
// is inconclusive (too few mirrored requests), it is extended to 5 ×
// dark, or to dark + healthy_deadline when that is longer; then the host
// fails. The leader allows for it in the host's deadline.
func DarkLimit(dark, healthyDeadline time.Duration) time.Duration {
	return sattime.Sum(dark, max(time.Duration(maxStepExtensions)*dark, healthyDeadline))
}

// runDark runs generation gen's dark phase. It returns the weight it
// moved traffic to and true when the phase passed; false when it failed
// (a revert is asked for) or ctx ended.
func (c *appCtl) runDark(ctx context.Context, gen uint64, spec *rollwavev1.ReleaseSpec, st slot.State) (int, bool) {
	dark := sattime.Millis(spec.GetPhases().GetDarkMs())
	if dark <= 0 {
		dark = time.Second // an order that lost its length: still check once
	}
	shadow := st.Split.Shadow != nil
	log := c.log.With("generation", gen, "slot", st.Active, "old_slot", st.From)
	log.Info("dark phase", "dark", dark, "shadow", shadow)
	clock := c.a.clock
	start := clock.Mono()
	end := sattime.Sum(start, dark)
	limit := sattime.Sum(start, DarkLimit(dark, healthyDeadline(spec)))
	tick := time.NewTicker(max(dark/stepCheckEvery, 10*time.Millisecond))
	defer tick.Stop()
	c.a.mgr.DrainShadowStats(c.app) // start afresh
	var (
		sum shadowSummary
		g   stepGate
	)
	for {
		select {
		case <-ctx.Done():
			return 0, false
		case <-tick.C:
		}
		v := stepVerdict{verdict: health.Pass, evidence: "no shadow traffic"}
		if shadow {
			if s, ok := c.a.mgr.DrainShadowStats(c.app); ok {
				sum.add(&s)
				g.newStats.Merge(&s.Shadow)
				g.oldStats.Merge(&s.Live)
			}
			v = g.judge(spec, true)
			v.evidence = fmt.Sprintf("shadow: %s; %d status-class mismatches, %d not mirrored", v.evidence, sum.Mismatched, sum.Dropped)
		}
		hs, _ := c.healthStatus()
		now := clock.Mono()
		if v.verdict == health.Fail {
			reason := fmt.Sprintf("dark phase failed before any user traffic reached the new slot: %s", v.evidence)
			log.Warn("dark phase failed; the new slot never served users", "evidence", v.evidence)
			c.requestRevert(gen, reason)
			return 0, false
		}
		if now < end {
			continue
		}
		if hs.Healthy && v.verdict == health.Pass {
			next := 100
			if steps := spec.GetTraffic().GetSteps(); len(steps) > 0 {
				next = int(steps[0])
			}
			log.Info("dark phase passed", "after", time.Duration(now-start).Round(time.Millisecond), "next_weight", next, "evidence", v.evidence)
			if err := c.a.mgr.SetWeight(ctx, c.app, gen, next); err != nil {
				if ctx.Err() != nil {
					return 0, false
				}
				c.requestRevert(gen, fmt.Sprintf("dark phase passed, but moving to %d%%: %v", next, err))
				return 0, false
			}
			c.a.mgr.DrainStepStats(c.app) // the first step starts with fresh counts
			c.setDarkNote(gen, fmt.Sprintf("dark phase passed after %s: %s", time.Duration(now-start).Round(time.Millisecond), v.evidence))
			return next, true
		}
		if now >= limit {
			why := "inconclusive"
			if !hs.Healthy {
				why = "new slot not healthy: " + orNone(hs.LastError)
			}
			reason := fmt.Sprintf("dark phase %s after %s: %s", why, time.Duration(now-start).Round(time.Millisecond), v.evidence)
			log.Warn("dark phase did not pass in time", "evidence", v.evidence, "healthy", hs.Healthy)
			c.requestRevert(gen, reason)
			return 0, false
		}
	}
}

// shadowSummary adds up the counters of a dark phase's mirror.
type shadowSummary struct {
	Mismatched, Dropped uint64
}

func (s *shadowSummary) add(o *slot.ShadowStats) {
	s.Mismatched += o.Mismatched
	s.Dropped += o.Dropped
}

func orNone(s string) string {
	if s == "" {
		return "no error recorded"
	}
	return s
}

func (c *appCtl) setDarkNote(gen uint64, note string) {
	c.mu.Lock()
	c.dark.gen, c.dark.note = gen, note
	c.mu.Unlock()
}

// darkNoteOf is generation gen's dark phase evidence, "" when it had none
// (or the agent restarted since).
func (c *appCtl) darkNoteOf(gen uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dark.gen != gen {
		return ""
	}
	return c.dark.note
}
