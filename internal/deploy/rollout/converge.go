package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Converge submits and starts a convergence release of app: its desired
// (last succeeded) release rolled to the drifted hosts connected to this
// leader, one host per phase, with the same spec and gates. hosts, when
// not empty, limits it to those drifted hosts. It returns the release and
// the drifted hosts it left out (not connected). Errors wrap
// raftfsm.ErrNotFound (nothing succeeded yet), ErrConflict (a release is
// active, or no drifted host can be reached) or the raft write's error.
func (o *Orchestrator) Converge(ctx context.Context, app, actor, why string, hosts ...string) (*rollwavev1.Release, []*rollwavev1.DriftedHost, error) {
	d := drift.Desired(o.state, app)
	if d == nil {
		return nil, nil, fmt.Errorf("%w: app %q has no succeeded release to converge to", raftfsm.ErrNotFound, app)
	}
	if a := o.state.ActiveRelease(app); a != nil {
		return nil, nil, fmt.Errorf("%w: app %q has release %q (%s); converge once it has ended", raftfsm.ErrConflict, app, a.GetId(), stateName(a.GetState()))
	}
	var pick, skipped []*rollwavev1.DriftedHost
	for _, h := range drift.Hosts(o.state, app) {
		switch {
		case len(hosts) > 0 && !slices.Contains(hosts, h.GetHost()):
		case o.agents.Connected(h.GetHost()):
			pick = append(pick, h)
		default:
			skipped = append(skipped, h)
		}
	}
	if len(pick) == 0 {
		if len(skipped) == 0 {
			return nil, nil, fmt.Errorf("%w: no host of app %q has drifted from release %q (version %s)", raftfsm.ErrConflict, app, d.GetId(), d.GetSpec().GetVersion())
		}
		return nil, skipped, fmt.Errorf("%w: %d host(s) of app %q drifted from release %q, none connected to the leader: %s",
			raftfsm.ErrConflict, len(skipped), app, d.GetId(), strings.Join(driftNames(skipped), ","))
	}
	now := o.now()
	id := drift.NextID(o.state, d)
	names := driftNames(pick)
	r := drift.Release(d, id, names, func(h string) string { return o.state.Host(h).GetCell() }, now, actor)
	if err := o.w.SubmitRelease(ctx, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now.UnixNano(), Release: r, Actor: actor}); err != nil {
		return nil, skipped, err
	}
	evidence := map[string]string{
		"converges": d.GetId(), "root": drift.Root(d), "version": d.GetSpec().GetVersion(), "hosts": strings.Join(names, ","),
		"skipped": strings.Join(driftNames(skipped), ","), "reason": why,
	}
	for _, h := range pick {
		evidence["host."+h.GetHost()] = fmt.Sprintf("has %q: %s", h.GetHasVersion(), h.GetReason())
	}
	msg := fmt.Sprintf("convergence of release %s: rolling version %s to %d drifted host(s), one per phase: %s",
		d.GetId(), d.GetSpec().GetVersion(), len(names), strings.Join(names, ","))
	if err := o.startConverge(ctx, r, actor, msg, evidence); err != nil {
		return nil, skipped, err
	}
	return o.state.Release(id), skipped, nil
}

// startConverge starts a pending convergence release; the decision and
// its evidence are one entry.
func (o *Orchestrator) startConverge(ctx context.Context, r *rollwavev1.Release, actor, msg string, evidence map[string]string) error {
	now := o.now().UnixNano()
	e := ev(r, 0, "release.converge", msg, evidence)
	e.Actor = actor
	return o.w.SetReleaseState(ctx, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), State: relRunning, Reason: msg, Actor: actor, CurrentPhase: -1,
		Events: stamp([]*rollwavev1.Event{e}, now),
	})
}

func driftNames(ds []*rollwavev1.DriftedHost) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.GetHost())
	}
	return out
}

// ConvergeActor is recorded on convergence releases the leader starts on
// its own (converge = "auto").
const ConvergeActor = "converge"

// converger is the leader's memory for automatic convergence: when each
// host was first seen connected in a row (a flapping host waits), and the
// jittered retry time of each host's failed attempts.
type converger struct {
	connectedSince map[string]time.Time
	retryAt        map[string]retry
}

type retry struct {
	failed int
	at     time.Time
}

// convergeLoop runs automatic convergence until ctx ends.
func (o *Orchestrator) convergeLoop(ctx context.Context) {
	cv := &converger{connectedSince: map[string]time.Time{}, retryAt: map[string]retry{}}
	b := backoff.New(o.cfg.RetryMin, o.cfg.RetryMax)
	tick := time.NewTicker(o.cfg.ConvergeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := o.convergeOnce(ctx, cv); err != nil {
			if !o.backOff(ctx, b, "automatic convergence failed; retrying", err) {
				return
			}
			continue
		}
		b.Reset()
	}
}

// convergeOnce starts, for each app with converge = "auto", no active
// release and a drifted host ready for it, a convergence release of that
// one host: a host that fails is reverted alone and retried later.
func (o *Orchestrator) convergeOnce(ctx context.Context, cv *converger) error {
	now := o.now()
	if on, _ := o.state.GlobalFreeze(); on {
		return nil // no new release starts during a freeze
	}
	for _, app := range o.state.Apps() {
		d := drift.Desired(o.state, app.GetName())
		if d == nil || d.GetSpec().GetConverge() != drift.ModeAuto {
			continue
		}
		if a := o.state.ActiveRelease(app.GetName()); a != nil {
			// A convergence submitted by a leader that was lost before
			// it started it: start it now.
			if a.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_PENDING && a.GetConvergeOf() != "" && a.GetCreatedBy() == ConvergeActor {
				if err := o.startConverge(ctx, a, ConvergeActor, "convergence started by a new leader", map[string]string{"converges": a.GetConvergeOf()}); err != nil {
					return err
				}
			}
			continue
		}
		host, ok := o.nextToConverge(cv, d, now)
		if !ok {
			continue
		}
		var cells []string
		if h := o.state.Host(host); h != nil {
			cells = []string{h.GetCell()}
		}
		if held, _ := o.frozen(nil, app.GetName(), cells, now); held {
			continue // no new release starts during a freeze window
		}
		if _, _, err := o.Converge(ctx, app.GetName(), ConvergeActor, `converge = "auto"`, host); err != nil {
			return err
		}
	}
	return nil
}

// nextToConverge picks the first drifted host of d's app that has been
// connected for UnreachableAfter without a break, has failed fewer than
// ConvergeAttempts convergences, and whose backoff after its last failed
// one has run out.
func (o *Orchestrator) nextToConverge(cv *converger, d *rollwavev1.Release, now time.Time) (string, bool) {
	app := d.GetSpec().GetApp()
	attempts := drift.Attempts(o.state, app, drift.Root(d))
	for _, h := range drift.Hosts(o.state, app) {
		id := h.GetHost()
		if !o.agents.Connected(id) {
			delete(cv.connectedSince, id)
			continue
		}
		since, ok := cv.connectedSince[id]
		if !ok {
			cv.connectedSince[id] = now
			continue
		}
		if now.Sub(since) < o.cfg.UnreachableAfter {
			continue // flapping or just back: wait until it stays
		}
		at := attempts[id]
		if at.Failed >= o.cfg.ConvergeAttempts {
			continue // given up; `rollwave release converge` retries it
		}
		if at.Failed > 0 {
			r, ok := cv.retryAt[id]
			if !ok || r.failed != at.Failed {
				b := backoff.New(o.cfg.ConvergeBackoffMin, o.cfg.ConvergeBackoffMax)
				var wait time.Duration
				for range at.Failed {
					wait = b.Next()
				}
				r = retry{failed: at.Failed, at: time.Unix(0, at.LastEnded).Add(wait)}
				cv.retryAt[id] = r
			}
			if now.Before(r.at) {
				continue
			}
		}
		return id, true
	}
	return "", false
}
