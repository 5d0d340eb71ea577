package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultJitterFraction is the share of a check's interval added, at
// random, to each wait between runs, so checks of many slots (and hosts
// started together) do not probe in lockstep.
const DefaultJitterFraction = 0.1

var (
	// ErrNotHealthy is wrapped by WaitHealthy when the deadline passes.
	ErrNotHealthy = errors.New("not healthy")
	// ErrTrackerStopped is wrapped by WaitHealthy when the tracker stops.
	ErrTrackerStopped = errors.New("health tracker stopped")
)

// CheckWithInterval pairs a check with how often it runs.
type CheckWithInterval struct {
	Check Check
	// Interval between runs (plus jitter). It also bounds one run: a check
	// that takes longer is cancelled and counts as failed.
	Interval time.Duration
}

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// Checks to run. With none, the tracker is healthy MinHealthyTime after
	// Start (the caller has nothing to probe beyond the process itself).
	Checks []CheckWithInterval
	// MinHealthyTime is how long every check must pass without a single
	// failure before the tracker reports Healthy. Zero means healthy as soon
	// as every check has passed once.
	MinHealthyTime time.Duration
	// Clock drives intervals and MinHealthyTime; nil means RealClock().
	Clock Clock
	// Logger receives transitions (check failing/recovered, healthy gained
	// or lost), not every run; nil means slog.Default(). The tracker adds
	// component=health.
	Logger *slog.Logger
	// JitterFraction of the interval is added at random to each wait. Zero
	// means DefaultJitterFraction; a negative value disables jitter (tests).
	JitterFraction float64
}

// Validate reports the first invalid field.
func (c TrackerConfig) Validate() error {
	if c.MinHealthyTime < 0 {
		return fmt.Errorf("health tracker: MinHealthyTime %s is negative", c.MinHealthyTime)
	}
	if c.JitterFraction > 1 {
		return fmt.Errorf("health tracker: JitterFraction %g is above 1", c.JitterFraction)
	}
	seen := make(map[string]bool, len(c.Checks))
	for i, cw := range c.Checks {
		if cw.Check == nil {
			return fmt.Errorf("health tracker: Checks[%d]: Check is nil", i)
		}
		if cw.Interval <= 0 {
			return fmt.Errorf("health tracker: check %s: interval %s must be positive", cw.Check.Name(), cw.Interval)
		}
		if seen[cw.Check.Name()] {
			return fmt.Errorf("health tracker: check name %q used twice; names must be unique", cw.Check.Name())
		}
		seen[cw.Check.Name()] = true
	}
	return nil
}

// CheckStatus is one check's latest state.
type CheckStatus struct {
	Name string
	// Passing is true when the latest run passed. False before the first run.
	Passing bool
	// Runs counts completed runs.
	Runs uint64
	// LastError is the latest failure of this check, kept after recovery.
	LastError string
	LastRun   time.Time
}

// Status is a snapshot of a Tracker.
type Status struct {
	// Healthy is true once every check has passed continuously for
	// MinHealthyTime.
	Healthy bool
	// HealthyFor is how long every check has been passing (0 while any
	// check is failing or has not run yet). It keeps growing past
	// MinHealthyTime.
	HealthyFor time.Duration
	// LastError is the most recent failure of any check, kept after the
	// check recovers ("" if none ever failed); LastErrorAt says when.
	LastError   string
	LastErrorAt time.Time
	// Failures counts failed runs of all checks since Start.
	Failures uint64
	// Runs counts completed runs of all checks since Start.
	Runs uint64
	// LastRun is when the most recent run of any check completed.
	LastRun time.Time
	// Checks holds each check's state, in configuration order.
	Checks []CheckStatus
}

// Tracker runs a set of checks, each on its own interval, and tracks
// whether they have all been passing for MinHealthyTime. A single failure
// of any check resets the clock. It is safe for concurrent use.
type Tracker struct {
	cfg     TrackerConfig
	clock   Clock
	log     *slog.Logger
	results chan result

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu        sync.Mutex
	started   time.Time // zero until Start
	stopped   bool
	checks    []checkState
	runs      uint64
	failures  uint64
	lastErr   string
	lastErrAt time.Time
	lastRun   time.Time
	subs      map[int]chan Status
	nextSub   int
}

type checkState struct {
	CheckStatus
	passingSince time.Time // start of the current passing streak
}

type result struct {
	idx int
	err error
	at  time.Time
}

// NewTracker validates cfg and returns a stopped tracker; call Start.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.JitterFraction == 0 {
		cfg.JitterFraction = DefaultJitterFraction
	}
	t := &Tracker{
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     cfg.Logger.With("component", "health"),
		results: make(chan result, len(cfg.Checks)),
		checks:  make([]checkState, len(cfg.Checks)),
		subs:    make(map[int]chan Status),
	}
	for i, cw := range cfg.Checks {
		t.checks[i].Name = cw.Check.Name()
	}
	return t, nil
}

// Start runs every check once right away and then on its interval until
// ctx ends or Stop is called; either way subscriptions are then closed
// and Status keeps reporting the last results. Calls after the first do
// nothing.
func (t *Tracker) Start(ctx context.Context) {
	t.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		t.mu.Lock()
		if t.stopped {
			t.mu.Unlock()
			cancel()
			return
		}
		t.cancel = cancel
		t.started = t.clock.Now()
		t.mu.Unlock()

		t.wg.Add(1 + len(t.cfg.Checks))
		go t.loop(ctx)
		for i, cw := range t.cfg.Checks {
			go t.runCheck(ctx, i, cw)
		}
	})
}

// Stop stops all checks, waits for them to return, and closes every
// subscription channel. It is safe to call more than once, and before Start.
func (t *Tracker) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		cancel := t.cancel
		t.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		t.wg.Wait()
		t.closeSubs() // the loop did if it ran; not if Start never was
	})
}

// closeSubs marks the tracker stopped and closes every subscription.
func (t *Tracker) closeSubs() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for id, ch := range t.subs {
		close(ch)
		delete(t.subs, id)
	}
}

// Status returns the current state. Healthy and HealthyFor are computed
// against the clock at the time of the call, so they are exact even
// between check runs.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statusLocked(t.clock.Now())
}

// Subscribe returns a channel that receives a Status after every check run
// and on every health transition, and a function that ends the
// subscription. The channel holds one value and updates coalesce: a slow
// reader sees the latest status, never a backlog, and never blocks the
// tracker. The channel is closed by cancel or when the tracker stops
// (Stop, or the Start context ending). Statuses received share their
// Checks slice with other subscribers: treat them as read-only.
func (t *Tracker) Subscribe() (<-chan Status, func()) {
	ch := make(chan Status, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		close(ch)
		return ch, func() {}
	}
	id := t.nextSub
	t.nextSub++
	t.subs[id] = ch
	return ch, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if c, ok := t.subs[id]; ok {
			close(c)
			delete(t.subs, id)
		}
	}
}

// WaitHealthy blocks until the tracker is healthy (nil), deadline passes on
// the tracker's clock (an error wrapping ErrNotHealthy that carries the
// failing check's error), ctx ends, or the tracker stops (wrapping
// ErrTrackerStopped). A deadline <= 0 means only ctx bounds the wait. The
// agent uses it for readiness and healthy_deadline.
func (t *Tracker) WaitHealthy(ctx context.Context, deadline time.Duration) error {
	ch, cancel := t.Subscribe()
	defer cancel()

	var expired <-chan time.Time
	if deadline > 0 {
		timer := t.clock.NewTimer(deadline)
		defer timer.Stop()
		expired = timer.C()
	}
	for {
		st := t.Status()
		if st.Healthy {
			return nil
		}
		select {
		case _, ok := <-ch:
			if !ok {
				return fmt.Errorf("%w: %s", ErrTrackerStopped, t.describe(t.Status()))
			}
		case <-expired:
			// A check result and the deadline may land together; healthy wins.
			st := t.Status()
			if st.Healthy {
				return nil
			}
			return fmt.Errorf("%w within %s: %s", ErrNotHealthy, deadline, t.describe(st))
		case <-ctx.Done():
			return fmt.Errorf("waiting for health: %w: %s", ctx.Err(), t.describe(t.Status()))
		}
	}
}

// describe says why st is not healthy, leading with the error of a check
// that is failing now.
func (t *Tracker) describe(st Status) string {
	for _, c := range st.Checks {
		if c.Runs > 0 && !c.Passing {
			return c.LastError
		}
	}
	for _, c := range st.Checks {
		if c.Runs == 0 {
			return fmt.Sprintf("check %s has not completed a run yet", c.Name)
		}
	}
	msg := fmt.Sprintf("all checks passing for %s, need %s", st.HealthyFor, t.cfg.MinHealthyTime)
	if st.LastError != "" {
		msg += "; last failure: " + st.LastError
	}
	return msg
}
