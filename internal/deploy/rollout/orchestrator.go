package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Actor is recorded on the events and state changes the orchestrator makes.
const Actor = "rollout"

// Orchestrator drives releases on the leader. Create it with New; the
// coordinator calls SetEnabled on leadership changes and Observe with
// every agent heartbeat. All methods are safe for concurrent use.
type Orchestrator struct {
	cfg     Config
	state   *raftfsm.State
	w       Writer
	agents  Agents
	log     *slog.Logger
	now     func() time.Time
	samples *sampleStore

	mu        sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
	enabledAt time.Time
	runs      map[string]*run
	// lastSeen is when this leader last heard from each host (heartbeat
	// or open session); it starts at enabledAt so that agents have time to
	// reconnect to a new leader before they count as unreachable.
	seenMu   sync.Mutex
	lastSeen map[string]time.Time
	// rehearsals are rollback rehearsal results from agents, held until
	// the phase decision that records them (rehearse.go).
	rehMu      sync.Mutex
	rehearsals map[rehearsalKey]*rollwavev1.RehearsalResult
}

// New returns a disabled orchestrator.
func New(cfg Config, state *raftfsm.State, w Writer, agents Agents) (*Orchestrator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if state == nil || w == nil || agents == nil {
		return nil, errors.New("rollout: state, writer and agents are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &Orchestrator{
		cfg: cfg, state: state, w: w, agents: agents, now: now,
		log:      log.With("component", "rollout"),
		samples:  newSampleStore(cfg.SampleWindow),
		runs:     map[string]*run{},
		lastSeen: map[string]time.Time{},
	}, nil
}

// SetEnabled starts (true) or stops (false) the orchestrator. Enabling an
// enabled orchestrator does nothing. Disabling cancels every release
// goroutine and waits for them; it may block for as long as one raft
// apply in flight takes to fail.
func (o *Orchestrator) SetEnabled(enabled bool) {
	o.mu.Lock()
	if enabled {
		if o.cancel != nil {
			o.mu.Unlock()
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		o.cancel, o.done = cancel, make(chan struct{})
		o.enabledAt = o.now()
		o.runs = map[string]*run{}
		done := o.done
		o.mu.Unlock()
		o.seenMu.Lock()
		o.lastSeen = map[string]time.Time{}
		o.seenMu.Unlock()
		o.rehMu.Lock()
		o.rehearsals = map[rehearsalKey]*rollwavev1.RehearsalResult{}
		o.rehMu.Unlock()
		o.log.Info("orchestrator enabled")
		go func() {
			defer close(done)
			o.loop(ctx)
		}()
		return
	}
	cancel, done := o.cancel, o.done
	o.cancel, o.done = nil, nil
	o.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	// Samples are leader memory; the next leader gathers its own.
	o.samples.reset()
	o.log.Info("orchestrator disabled")
}

// Enabled reports whether the orchestrator runs.
func (o *Orchestrator) Enabled() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cancel != nil
}

// Observe records a heartbeat from host, received at at: its samples feed
// the baseline comparison and it proves the host reachable. It does not
// block (a short lock), so the session loop may call it inline.
func (o *Orchestrator) Observe(host string, hb *rollwavev1.Heartbeat, at time.Time) {
	if bad := o.samples.observe(host, hb, at); bad > 0 {
		o.log.Warn("heartbeat request stats rejected", "host", host, "entries", bad)
	}
	o.seen(host, at)
}

func (o *Orchestrator) seen(host string, at time.Time) {
	o.seenMu.Lock()
	if at.After(o.lastSeen[host]) {
		o.lastSeen[host] = at
	}
	o.seenMu.Unlock()
}

func (o *Orchestrator) lastSeenAt(host string) time.Time {
	o.seenMu.Lock()
	t := o.lastSeen[host]
	o.seenMu.Unlock()
	o.mu.Lock()
	en := o.enabledAt
	o.mu.Unlock()
	if t.Before(en) {
		return en
	}
	return t
}

// activeStates are the release states a goroutine watches.
var activeStates = []rollwavev1.ReleaseState{
	rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, rollwavev1.ReleaseState_RELEASE_STATE_PAUSED,
	rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL, rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
	rollwavev1.ReleaseState_RELEASE_STATE_WATCHING,
}

// loop starts a goroutine for each release that needs one and waits for
// them all when the context ends.
func (o *Orchestrator) loop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.convergeLoop(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.chainLoop(ctx)
	}()
	for {
		// Every live release is its app's active release: a release starts
		// or ends only with a change to its app, so the apps are what this
		// loop watches, not every entry.
		changed := o.state.WatchApps()
		for _, r := range o.state.ActiveReleases() {
			if !slices.Contains(activeStates, r.GetState()) {
				continue
			}
			o.mu.Lock()
			_, running := o.runs[r.GetId()]
			if !running {
				rn := newRun(r.GetId())
				o.runs[r.GetId()] = rn
				wg.Add(1)
				go func() {
					defer wg.Done()
					o.runRelease(ctx, rn)
					o.mu.Lock()
					delete(o.runs, rn.id)
					o.mu.Unlock()
				}()
			}
			o.mu.Unlock()
		}
		if !o.waitChange(ctx, changed) {
			return
		}
	}
}

// waitChange waits for the watch to fire or one Tick, whichever is first
// (bounded: time-driven steps such as bake deadlines need no entry). It
// returns false once ctx ends.
func (o *Orchestrator) waitChange(ctx context.Context, w raftfsm.Watch) bool {
	wctx, cancel := context.WithTimeout(ctx, o.cfg.Tick)
	defer cancel()
	w.Wait(wctx)
	return ctx.Err() == nil
}

// runRelease reconciles one release until it ends or leadership is lost.
func (o *Orchestrator) runRelease(ctx context.Context, rn *run) {
	// However the goroutine ends, its release stops holding samples.
	defer o.samples.unneed(rn.id)
	log := o.log.With("release_id", rn.id)
	log.Info("watching release")
	backoff := o.cfg.RetryMin
	for {
		// Only entries about this release (its record, assignments and
		// events) or the freezes wake it; others leave it asleep.
		changed := o.state.WatchRelease(rn.id)
		done, err := o.step(ctx, rn)
		if done {
			log.Info("release no longer active; stopping")
			return
		}
		wait := time.Duration(0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Full jitter, capped: retries never hammer raft.
			wait = time.Duration(rand.Int64N(int64(backoff)) + 1)
			backoff = min(backoff*2, o.cfg.RetryMax)
			log.Warn("rollout step failed; retrying", "error", err, "retry_in", wait)
		} else {
			backoff = o.cfg.RetryMin
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		if !o.waitChange(ctx, changed) {
			return
		}
	}
}

// run is a release's leader memory: only what may be rebuilt (or safely
// repeated) by a new leader — flags that keep events from being written
// twice, and the start of bounded waits.
type run struct {
	id            string
	held          map[int32]string
	verifiedSent  map[int32]bool
	skipLogged    map[int32]bool
	hostLogged    map[string]bool
	finalizeStart time.Time
	finalizeSent  map[string]time.Time
	// finalizeWait: how long after finalizeSent a host that took the
	// order is sent it again (doubling; finalizeResendAfter).
	finalizeWait    map[string]time.Duration
	revertStart     time.Time
	revertTries     map[string]int
	revertOrderedAt map[string]time.Time
	pausedPhase     int32
	metric          metricGateRun
	// earlyRead: when the running max_error_rate reading last summed a
	// baking phase's requests (watchRequestGates).
	earlyRead map[int32]time.Time
	// unhealthySince: when the watch first saw a host's new slot
	// failing its health checks in a heartbeat (post_rollout.watch).
	unhealthySince map[string]time.Time
	// watchFinal: the watch's last reading at the window's end, carried
	// by the success (nil until read).
	watchFinal []gateResult
	// rehearsal is phase 0's rollback rehearsal in flight.
	rehearsal *rehearsalRun
	// regionRevertStart: when this leader began rolling back each
	// region (fail_local).
	regionRevertStart map[string]time.Time
}

func newRun(id string) *run {
	return &run{
		id: id, held: map[int32]string{}, verifiedSent: map[int32]bool{}, skipLogged: map[int32]bool{},
		hostLogged: map[string]bool{}, finalizeSent: map[string]time.Time{}, finalizeWait: map[string]time.Duration{}, revertTries: map[string]int{},
		revertOrderedAt: map[string]time.Time{}, unhealthySince: map[string]time.Time{}, earlyRead: map[int32]time.Time{},
		pausedPhase: -1,
	}
}

func hostGenKey(host string, gen uint64) string { return fmt.Sprintf("%s/%d", host, gen) }
