package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// runCheck runs one check immediately and then every interval (+ jitter).
// It re-arms its timer before reporting a result, so once a result is
// visible the next run is already scheduled (tests with FakeClock rely on
// this ordering).
func (t *Tracker) runCheck(ctx context.Context, idx int, cw CheckWithInterval) {
	defer t.wg.Done()
	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		err := t.runOnce(ctx, cw)
		if ctx.Err() != nil {
			return
		}
		at := t.clock.Now()
		if timer == nil {
			timer = t.clock.NewTimer(t.nextWait(cw.Interval))
		} else {
			timer.Reset(t.nextWait(cw.Interval))
		}
		select {
		case t.results <- result{idx: idx, err: err, at: at}:
		case <-ctx.Done():
			return
		}
		select {
		case <-timer.C():
		case <-ctx.Done():
			return
		}
	}
}

// runOnce runs the check bounded by its interval and turns a panic into a
// failure: a buggy check must not take the agent down.
func (t *Tracker) runOnce(ctx context.Context, cw CheckWithInterval) (err error) {
	ctx, cancel := context.WithTimeout(ctx, cw.Interval)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check %s panicked: %v", cw.Check.Name(), r)
		}
	}()
	return cw.Check.Run(ctx)
}

func (t *Tracker) nextWait(interval time.Duration) time.Duration {
	if t.cfg.JitterFraction <= 0 {
		return interval
	}
	return interval + jitter(interval, t.cfg.JitterFraction)
}

// jitter returns a random duration in [0, interval*fraction).
func jitter(interval time.Duration, fraction float64) time.Duration {
	span := int64(float64(interval) * fraction)
	if span <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(span))
}

// loop owns the transitions: it records results, keeps a timer for the
// moment the passing streak reaches MinHealthyTime, and publishes.
func (t *Tracker) loop(ctx context.Context) {
	defer t.wg.Done()
	defer t.closeSubs()
	var (
		healthyAt  Timer
		fire       <-chan time.Time
		wasHealthy bool
	)
	defer func() {
		if healthyAt != nil {
			healthyAt.Stop()
		}
	}()

	// settle records r (if any), re-arms the healthy timer and publishes,
	// all under one lock so the timer is in place before anyone can see
	// the new state.
	settle := func(r *result) {
		t.mu.Lock()
		if r != nil {
			t.recordLocked(*r)
		}
		now := t.clock.Now()
		st := t.statusLocked(now)
		fire = nil
		if healthyAt != nil {
			healthyAt.Stop()
		}
		if since, ok := t.healthySinceLocked(); ok && !st.Healthy {
			d := since.Add(t.cfg.MinHealthyTime).Sub(now)
			if healthyAt == nil {
				healthyAt = t.clock.NewTimer(d)
			} else {
				healthyAt.Reset(d)
			}
			fire = healthyAt.C()
		}
		t.publishLocked(st)
		t.mu.Unlock()

		if st.Healthy != wasHealthy {
			if st.Healthy {
				t.log.Info("healthy", "healthy_for", st.HealthyFor, "min_healthy_time", t.cfg.MinHealthyTime)
			} else {
				t.log.Warn("no longer healthy", "error", st.LastError)
			}
			wasHealthy = st.Healthy
		}
	}

	settle(nil)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-t.results:
			settle(&r)
		case <-fire:
			settle(nil)
		}
	}
}

// recordLocked applies one check result.
func (t *Tracker) recordLocked(r result) {
	c := &t.checks[r.idx]
	wasPassing, ran := c.Passing, c.Runs > 0
	c.Runs++
	c.LastRun = r.at
	t.runs++
	t.lastRun = r.at
	if r.err == nil {
		if !c.Passing {
			c.passingSince = r.at
		}
		c.Passing = true
		if ran && !wasPassing {
			t.log.Info("check recovered", "check", c.Name)
		}
		return
	}
	c.Passing = false
	c.LastError = r.err.Error()
	t.failures++
	t.lastErr, t.lastErrAt = c.LastError, r.at
	if !ran || wasPassing {
		t.log.Warn("check failing", "check", c.Name, "error", c.LastError)
	}
}

// healthySinceLocked returns when every check last started passing, and
// false if any check is failing or has not run. With no checks, the streak
// starts at Start.
func (t *Tracker) healthySinceLocked() (time.Time, bool) {
	if t.started.IsZero() {
		return time.Time{}, false
	}
	since := t.started
	for i := range t.checks {
		c := &t.checks[i]
		if c.Runs == 0 || !c.Passing {
			return time.Time{}, false
		}
		if c.passingSince.After(since) {
			since = c.passingSince
		}
	}
	return since, true
}

func (t *Tracker) statusLocked(now time.Time) Status {
	st := Status{
		LastError:   t.lastErr,
		LastErrorAt: t.lastErrAt,
		Failures:    t.failures,
		Runs:        t.runs,
		LastRun:     t.lastRun,
		Checks:      make([]CheckStatus, len(t.checks)),
	}
	for i := range t.checks {
		st.Checks[i] = t.checks[i].CheckStatus
	}
	if since, ok := t.healthySinceLocked(); ok {
		st.HealthyFor = max(now.Sub(since), 0)
		st.Healthy = st.HealthyFor >= t.cfg.MinHealthyTime
	}
	return st
}

// publishLocked hands st to every subscriber without blocking: if a
// subscriber has not read the previous value, it is replaced.
func (t *Tracker) publishLocked(st Status) {
	for _, ch := range t.subs {
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- st:
		default:
		}
	}
}
