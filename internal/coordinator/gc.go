package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Retention is the `server { retention { } }` block: how much history the
// replicated state keeps. The leader's GC (gcLoop) enforces it by writing
// Prune entries, as Nomad's core scheduler does with its deployment and
// eval GC.
type Retention struct {
	// ReleasesPerApp is how many finished releases of each app are kept
	// (newest by creation time); older ones go with their events and
	// assignment history. An active release, or one a host still runs, is
	// always kept. 0 keeps every release.
	ReleasesPerApp int
	// Events is how long audit events are kept; 0 keeps them forever.
	Events time.Duration
	// GCInterval is how often the leader checks; it writes an entry only
	// when something is due.
	GCInterval time.Duration
}

// Bounds of the retention settings: the config file's (spec) own.
const (
	DefaultReleasesPerApp = spec.DefaultRetentionReleasesPerApp
	DefaultEventRetention = spec.DefaultRetentionEvents
	MaxReleasesPerApp     = spec.MaxRetentionReleasesPerApp
	// MinEventRetention keeps an operator from dropping the evidence of a
	// release still being looked at.
	MinEventRetention = spec.MinRetentionEvents
	DefaultGCInterval = 5 * time.Minute
)

// DefaultRetention returns the production retention.
func DefaultRetention() Retention {
	return Retention{ReleasesPerApp: DefaultReleasesPerApp, Events: DefaultEventRetention, GCInterval: DefaultGCInterval}
}

func (r Retention) validate() error {
	switch {
	case r.ReleasesPerApp < 0 || r.ReleasesPerApp > MaxReleasesPerApp:
		return fmt.Errorf("retention.releases_per_app must be 0 (keep all) to %d, got %d", MaxReleasesPerApp, r.ReleasesPerApp)
	case r.Events < 0 || (r.Events != 0 && r.Events < MinEventRetention):
		return fmt.Errorf("retention.events must be 0 (keep all) or at least %s, got %s", MinEventRetention, r.Events)
	case r.GCInterval <= 0:
		return fmt.Errorf("retention gc interval must be positive, got %s", r.GCInterval)
	}
	return nil
}

// pruneCommand is the entry the GC writes at now, or nil when the policy
// keeps everything.
func (r Retention) pruneCommand(now time.Time) *rollwavev1.PruneCommand {
	c := &rollwavev1.PruneCommand{TimeUnixNano: now.UnixNano(), Actor: "gc", KeepReleasesPerApp: int32(r.ReleasesPerApp)}
	if r.Events > 0 {
		c.EventsBeforeUnixNano = now.Add(-r.Events).UnixNano()
	}
	if c.KeepReleasesPerApp == 0 && c.EventsBeforeUnixNano == 0 {
		return nil
	}
	return c
}

// gcLoop runs for one leadership term (started by leaderLoop through
// goLeader, so stepping down waits for it): every GCInterval (with jitter)
// it writes a Prune entry if the state holds anything the retention policy
// drops. The entry carries the time and limits; followers drop exactly what
// the leader would. A failed write is retried with capped, jittered backoff.
func (s *Server) gcLoop(ctx context.Context) {
	r := s.cfg.Retention
	b := backoff.New(min(time.Second, r.GCInterval), r.GCInterval)
	for {
		wait := r.GCInterval + time.Duration(rand.Int64N(int64(r.GCInterval)/4+1))
		if err := s.gcOnce(); err != nil {
			wait = b.Next()
			s.log.Warn("retention: prune failed; retrying", "error", err, "retry_in", wait)
		} else {
			b.Reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// gcOnce writes one Prune entry if one is due.
func (s *Server) gcOnce() error {
	c := s.cfg.Retention.pruneCommand(time.Now())
	if c == nil || !s.fsm.State().PruneNeeded(c.GetKeepReleasesPerApp(), c.GetEventsBeforeUnixNano()) {
		return nil
	}
	if err := s.applyErr(raftfsm.Prune, c); err != nil {
		if errors.Is(err, raftfsm.ErrInvalid) {
			// The FSM refused the values: retrying cannot help.
			s.log.Error("retention: prune refused", "error", err)
			return nil
		}
		return err
	}
	s.log.Info("retention: pruned state", "keep_releases_per_app", c.GetKeepReleasesPerApp(),
		"events_before", time.Unix(0, c.GetEventsBeforeUnixNano()).UTC())
	return nil
}
