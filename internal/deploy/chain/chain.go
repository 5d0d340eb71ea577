// Package chain decides what a release chain needs next: whether its next
// step may start (the step before it succeeded on every targeted host,
// no host drifted from it, its min_gap passed, its app free), what a
// chain rollback does next (roll back a live step, or start a release
// bringing a succeeded step's app back to the version before it, last
// step first), and whether a step may be rolled back on its own.
//
// The package is pure: it reads raftfsm state and writes nothing. The
// leader's orchestrator (internal/deploy/rollout) acts on its decisions;
// the operator API shows them (`rollwave chain status`).
package chain

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Action is what a chain needs next.
type Action int

const (
	// Wait: nothing to do now; Reason says why.
	Wait Action = iota
	// StartStep: start step Step's release (Release, built by Decide).
	StartStep
	// Succeed: every step succeeded.
	Succeed
	// Halt: step Step's release ended without succeeding.
	Halt
	// RollBackRelease: move step Step's live release (Release) to
	// rolling_back (a pending one is aborted).
	RollBackRelease
	// StartRevert: start Release, bringing succeeded step Step's app back
	// to the version of Prior.
	StartRevert
	// RolledBack: every started step is rolled back.
	RolledBack
	// Fail: the rollback cannot go on; Reason says why.
	Fail
)

// Decision is Decide's answer.
type Decision struct {
	Action Action
	// Step is the step the decision is about (-1: the whole chain).
	Step int
	// Release: StartStep and StartRevert, the release to submit and
	// start; RollBackRelease, the step's live release.
	Release *rollwavev1.Release
	// Prior: StartRevert, the release whose version the revert restores.
	Prior *rollwavev1.Release
	// Reason says why (waiting, halting, failing) or what is done.
	Reason string
	// Evidence backs the decision, for its event.
	Evidence map[string]string
	// GapRemaining: Wait on min_gap, the time left.
	GapRemaining time.Duration
}

// Decide returns what chain c needs next at now.
func Decide(st *raftfsm.State, c *rollwavev1.Chain, now time.Time) Decision {
	switch c.GetState() {
	case rollwavev1.ChainState_CHAIN_STATE_ACTIVE:
		return decideActive(st, c, now)
	case rollwavev1.ChainState_CHAIN_STATE_ROLLING_BACK:
		return decideRollback(st, c)
	}
	return Decision{Action: Wait, Step: -1, Reason: "chain is " + raftfsm.ChainStateName(c.GetState())}
}

func decideActive(st *raftfsm.State, c *rollwavev1.Chain, now time.Time) Decision {
	steps := c.GetSteps()
	for i, s := range steps {
		if !s.GetStarted() {
			return ready(st, c, i, now)
		}
		r := st.Release(s.GetName())
		switch {
		case r == nil:
			return Decision{Action: Halt, Step: i, Reason: fmt.Sprintf("release %q of step %d no longer exists (pruned)", s.GetName(), i)}
		case !raftfsm.ReleaseTerminal(r.GetState()):
			return Decision{Action: Wait, Step: i, Release: r, Reason: fmt.Sprintf("release %q is %s", r.GetId(), stateName(r.GetState()))}
		case r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			why := fmt.Sprintf("release %q ended %s", r.GetId(), stateName(r.GetState()))
			if r.GetReason() != "" {
				why += ": " + r.GetReason()
			}
			return Decision{Action: Halt, Step: i, Release: r, Reason: why + "; later releases of the chain do not start",
				Evidence: map[string]string{"chain": c.GetName(), "release": r.GetId(), "state": stateName(r.GetState())}}
		}
	}
	return Decision{Action: Succeed, Step: len(steps) - 1, Reason: fmt.Sprintf("all %d releases succeeded", len(steps)),
		Evidence: map[string]string{"chain": c.GetName()}}
}

// ready decides whether step i (not started; step i-1 succeeded) may start.
func ready(st *raftfsm.State, c *rollwavev1.Chain, i int, now time.Time) Decision {
	s := c.GetSteps()[i]
	wait := func(format string, args ...any) Decision {
		return Decision{Action: Wait, Step: i, Reason: fmt.Sprintf("%q waits: ", s.GetName()) + fmt.Sprintf(format, args...)}
	}
	prev := st.Release(s.GetAfter())
	if prev.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED {
		return wait("release %q is %s, not succeeded", s.GetAfter(), stateName(prev.GetState()))
	}
	succeededAt := time.Unix(0, prev.GetUpdatedUnixNano())
	gap := time.Duration(s.GetMinGapMs()) * time.Millisecond
	if left := succeededAt.Add(gap).Sub(now); left > 0 {
		d := wait("min_gap %s after %q succeeded (%s): %s left", gap, prev.GetId(), succeededAt.UTC().Format(time.RFC3339), left.Round(time.Second))
		d.GapRemaining = left
		return d
	}
	if a := st.ActiveRelease(s.GetSpec().GetApp()); a != nil {
		return wait("app %q has release %q (%s); it starts once that one has ended", s.GetSpec().GetApp(), a.GetId(), stateName(a.GetState()))
	}
	// Last: the drift scan reads every host, the checks above little.
	app := prev.GetSpec().GetApp()
	if d := drift.Desired(st, app); drift.Root(d) != prev.GetId() {
		return wait("app %q's last succeeded release is %q, not %q", app, d.GetId(), prev.GetId())
	}
	if dh := drift.Hosts(st, app); len(dh) > 0 {
		names := make([]string, 0, len(dh))
		for _, h := range dh {
			names = append(names, fmt.Sprintf("%s (has %q)", h.GetHost(), h.GetHasVersion()))
		}
		return wait("%d host(s) of app %q drifted from release %q: %s", len(dh), app, prev.GetId(), list(names))
	}
	finalized := 0
	for _, a := range st.LiveAssignments(prev.GetId()) {
		if a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED {
			finalized++
		}
	}
	return Decision{
		Action: StartStep, Step: i,
		Release: &rollwavev1.Release{Id: s.GetName(), Spec: proto.CloneOf(s.GetSpec()), SourceName: c.GetSourceName()},
		Reason:  fmt.Sprintf("chain %q: %q starts: %q succeeded %s ago on every targeted host", c.GetName(), s.GetName(), prev.GetId(), now.Sub(succeededAt).Round(time.Second)),
		Evidence: map[string]string{
			"chain": c.GetName(), "step": strconv.Itoa(i), "after": prev.GetId(),
			"after_succeeded_at": succeededAt.UTC().Format(time.RFC3339Nano), "min_gap": gap.String(),
			"waited": now.Sub(succeededAt).Round(time.Millisecond).String(), "after_hosts_finalized": strconv.Itoa(finalized),
			"drifted_hosts": "0",
		},
	}
}

func decideRollback(st *raftfsm.State, c *rollwavev1.Chain) Decision {
	steps := c.GetSteps()
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		if !s.GetStarted() {
			continue
		}
		if id := s.GetRevertReleaseId(); id != "" {
			rv := st.Release(id)
			switch {
			case rv == nil:
				return Decision{Action: Fail, Step: i, Reason: fmt.Sprintf("revert release %q of step %q no longer exists", id, s.GetName())}
			case !raftfsm.ReleaseTerminal(rv.GetState()):
				return Decision{Action: Wait, Step: i, Release: rv, Reason: fmt.Sprintf("revert release %q of %q is %s", id, s.GetName(), stateName(rv.GetState()))}
			case rv.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:
				return Decision{Action: Fail, Step: i, Release: rv, Reason: fmt.Sprintf("revert release %q of %q ended %s: %s", id, s.GetName(), stateName(rv.GetState()), rv.GetReason()),
					Evidence: map[string]string{"chain": c.GetName(), "release": id}}
			}
			continue
		}
		r := st.Release(s.GetName())
		if r == nil {
			continue // pruned: nothing of it is left to roll back
		}
		switch r.GetState() {
		case rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK:
			return Decision{Action: Wait, Step: i, Release: r, Reason: fmt.Sprintf("release %q is rolling back", r.GetId())}
		case rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, rollwavev1.ReleaseState_RELEASE_STATE_ABORTED:
			continue
		case rollwavev1.ReleaseState_RELEASE_STATE_FAILED:
			return Decision{Action: Fail, Step: i, Release: r, Reason: fmt.Sprintf("release %q failed: its rollback did not finish on every host (%s)", r.GetId(), r.GetReason()),
				Evidence: map[string]string{"chain": c.GetName(), "release": r.GetId()}}
		case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			prior := Prior(st, r)
			if prior == nil {
				return Decision{Action: Fail, Step: i, Release: r, Reason: fmt.Sprintf("release %q succeeded and app %q has no earlier succeeded release to go back to", r.GetId(), r.GetSpec().GetApp()),
					Evidence: map[string]string{"chain": c.GetName(), "release": r.GetId()}}
			}
			if a := st.ActiveRelease(r.GetSpec().GetApp()); a != nil {
				return Decision{Action: Wait, Step: i, Reason: fmt.Sprintf("app %q has release %q (%s); the revert of %q waits for it to end", r.GetSpec().GetApp(), a.GetId(), stateName(a.GetState()), r.GetId())}
			}
			return Decision{
				Action: StartRevert, Step: i, Prior: prior, Release: revertRelease(st, c, r, prior),
				Reason: fmt.Sprintf("chain %q rolls back %q: app %q goes back to version %s (release %q)", c.GetName(), r.GetId(), r.GetSpec().GetApp(), prior.GetSpec().GetVersion(), prior.GetId()),
				Evidence: map[string]string{
					"chain": c.GetName(), "step": strconv.Itoa(i), "reverts": r.GetId(), "from_version": r.GetSpec().GetVersion(),
					"to_version": prior.GetSpec().GetVersion(), "to_release": prior.GetId(),
				},
			}
		default: // pending, running, paused, awaiting approval, watching
			return Decision{Action: RollBackRelease, Step: i, Release: r,
				Reason:   fmt.Sprintf("chain %q rolls back %q (%s), last step first", c.GetName(), r.GetId(), stateName(r.GetState())),
				Evidence: map[string]string{"chain": c.GetName(), "step": strconv.Itoa(i), "release": r.GetId(), "was": stateName(r.GetState())}}
		}
	}
	return Decision{Action: RolledBack, Step: -1, Reason: "every started release rolled back, last first",
		Evidence: map[string]string{"chain": c.GetName()}}
}

// Prior returns the app's last succeeded release created before r: the
// version a rollback of a succeeded r goes back to; nil when there is none.
func Prior(st *raftfsm.State, r *rollwavev1.Release) *rollwavev1.Release {
	var prior *rollwavev1.Release
	for _, p := range st.Releases(r.GetSpec().GetApp(), rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED) {
		if p.GetId() != r.GetId() && p.GetCreatedUnixNano() < r.GetCreatedUnixNano() {
			prior = p
		}
	}
	return prior
}

// revertRelease builds the release that brings r's app back to prior's
// version: prior's spec (its target included), without requires (a
// rollback is never held by another app's version), planned at start.
func revertRelease(st *raftfsm.State, c *rollwavev1.Chain, r, prior *rollwavev1.Release) *rollwavev1.Release {
	id := r.GetId() + "-revert"
	for n := 2; st.Release(id) != nil && n < 1000; n++ {
		id = fmt.Sprintf("%s-revert-%d", r.GetId(), n)
	}
	sp := proto.CloneOf(prior.GetSpec())
	sp.Name, sp.Requires = id, nil
	return &rollwavev1.Release{Id: id, Spec: sp, SourceName: c.GetSourceName()}
}

// LiveAfter returns the first step after the one whose release is
// releaseID that is live: its release not ended, or succeeded with a host
// still running its version. A rollback of releaseID alone is refused
// while one is: it would break what the later step deployed (readers of a
// new format under its writers). nil when none is, or releaseID is not a
// step of c.
func LiveAfter(st *raftfsm.State, c *rollwavev1.Chain, releaseID string) *rollwavev1.Release {
	at := -1
	for i, s := range c.GetSteps() {
		if s.GetName() == releaseID {
			at = i
		}
	}
	if at < 0 {
		return nil
	}
	hosts := st.Hosts()
	for _, s := range c.GetSteps()[at+1:] {
		if !s.GetStarted() {
			continue
		}
		r := st.Release(s.GetName())
		switch {
		case r == nil:
		case !raftfsm.ReleaseTerminal(r.GetState()):
			return r
		case r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:
			for _, h := range hosts {
				if drift.ActiveVersion(h, r.GetSpec().GetApp()) == r.GetSpec().GetVersion() {
					return r
				}
			}
		}
	}
	return nil
}

func stateName(s rollwavev1.ReleaseState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RELEASE_STATE_"))
}

// list joins at most 10 items, saying how many it left out.
func list(items []string) string {
	if len(items) <= 10 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s, ... (%d more)", strings.Join(items[:10], ", "), len(items)-10)
}
