package raftfsm

import (
	"fmt"
	"strings"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The three state machines. A transition not listed here is rejected.

var releaseTransitions = map[v1.ReleaseState][]v1.ReleaseState{
	v1.ReleaseState_RELEASE_STATE_PENDING: {
		v1.ReleaseState_RELEASE_STATE_RUNNING, v1.ReleaseState_RELEASE_STATE_ABORTED,
	},
	v1.ReleaseState_RELEASE_STATE_RUNNING: {
		v1.ReleaseState_RELEASE_STATE_PAUSED, v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL,
		v1.ReleaseState_RELEASE_STATE_SUCCEEDED, v1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
		v1.ReleaseState_RELEASE_STATE_ABORTED, v1.ReleaseState_RELEASE_STATE_WATCHING,
		// Parallel regions with fail_local: some regions succeeded,
		// others were rolled back (checkPartial).
		v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED,
	},
	// post_rollout.watch: every phase verified, the gates still read.
	v1.ReleaseState_RELEASE_STATE_WATCHING: {
		v1.ReleaseState_RELEASE_STATE_SUCCEEDED, v1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
		v1.ReleaseState_RELEASE_STATE_ABORTED,
	},
	v1.ReleaseState_RELEASE_STATE_PAUSED: {
		v1.ReleaseState_RELEASE_STATE_RUNNING, v1.ReleaseState_RELEASE_STATE_ROLLING_BACK,
		v1.ReleaseState_RELEASE_STATE_ABORTED,
	},
	v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL: {
		v1.ReleaseState_RELEASE_STATE_RUNNING, v1.ReleaseState_RELEASE_STATE_PAUSED,
		v1.ReleaseState_RELEASE_STATE_ROLLING_BACK, v1.ReleaseState_RELEASE_STATE_ABORTED,
	},
	v1.ReleaseState_RELEASE_STATE_ROLLING_BACK: {
		v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, v1.ReleaseState_RELEASE_STATE_FAILED,
	},
}

var phaseTransitions = map[v1.PhaseState][]v1.PhaseState{
	v1.PhaseState_PHASE_STATE_PENDING:   {v1.PhaseState_PHASE_STATE_DEPLOYING, v1.PhaseState_PHASE_STATE_FAILED},
	v1.PhaseState_PHASE_STATE_DEPLOYING: {v1.PhaseState_PHASE_STATE_BAKING, v1.PhaseState_PHASE_STATE_FAILED},
	v1.PhaseState_PHASE_STATE_BAKING:    {v1.PhaseState_PHASE_STATE_VERIFIED, v1.PhaseState_PHASE_STATE_FAILED},
}

var assignmentTransitions = map[v1.AssignmentState][]v1.AssignmentState{
	v1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED: {
		v1.AssignmentState_ASSIGNMENT_STATE_STAGING, v1.AssignmentState_ASSIGNMENT_STATE_FAILED,
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTING,
	},
	v1.AssignmentState_ASSIGNMENT_STATE_STAGING: {
		v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, v1.AssignmentState_ASSIGNMENT_STATE_FAILED,
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTING,
	},
	v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED: {
		v1.AssignmentState_ASSIGNMENT_STATE_BAKING, v1.AssignmentState_ASSIGNMENT_STATE_FAILED,
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTING, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED,
	},
	v1.AssignmentState_ASSIGNMENT_STATE_BAKING: {
		v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, v1.AssignmentState_ASSIGNMENT_STATE_FAILED,
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTING, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED,
	},
	v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY: {
		v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, v1.AssignmentState_ASSIGNMENT_STATE_REVERTING,
		v1.AssignmentState_ASSIGNMENT_STATE_FAILED, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED,
	},
	v1.AssignmentState_ASSIGNMENT_STATE_FAILED: {
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTING, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED,
	},
	// An agent's isolated revert passes through reverting too.
	v1.AssignmentState_ASSIGNMENT_STATE_REVERTING: {
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTED, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED,
		v1.AssignmentState_ASSIGNMENT_STATE_FAILED,
	},
}

func allowed[S comparable](table map[S][]S, from, to S) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ReleaseTransitionAllowed reports whether a release may move from one state to another.
func ReleaseTransitionAllowed(from, to v1.ReleaseState) bool {
	return allowed(releaseTransitions, from, to)
}

// PhaseTransitionAllowed reports whether a phase may move from one state to another.
func PhaseTransitionAllowed(from, to v1.PhaseState) bool {
	return allowed(phaseTransitions, from, to)
}

// AssignmentTransitionAllowed reports whether an agent-reported assignment
// update may move from one state to another. (Aborting a release also moves
// non-terminal assignments to ABANDONED; that is not an agent update.)
func AssignmentTransitionAllowed(from, to v1.AssignmentState) bool {
	return allowed(assignmentTransitions, from, to)
}

// ReleaseTerminal reports whether s is an end state (succeeded, rolled back,
// aborted, failed, partially succeeded).
func ReleaseTerminal(s v1.ReleaseState) bool {
	switch s {
	case v1.ReleaseState_RELEASE_STATE_SUCCEEDED, v1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
		v1.ReleaseState_RELEASE_STATE_ABORTED, v1.ReleaseState_RELEASE_STATE_FAILED,
		v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED:
		return true
	}
	return false
}

// ReleaseFailed reports whether r has failed: one of its phases failed (a
// gate, host budgets included), or it is rolling back, rolled back or
// failed. Only such a release can be acknowledged (AckRelease).
func ReleaseFailed(r *v1.Release) bool {
	switch r.GetState() {
	case v1.ReleaseState_RELEASE_STATE_ROLLING_BACK, v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, v1.ReleaseState_RELEASE_STATE_FAILED,
		v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED:
		return true
	}
	for _, p := range r.GetPhases() {
		if p.GetState() == v1.PhaseState_PHASE_STATE_FAILED {
			return true
		}
	}
	return false
}

// AssignmentEnded reports whether an assignment in state s has ended, so a
// newer generation may be created for the same (host, app). FAILED counts
// as ended even though a failed assignment may still move on to reverting.
func AssignmentEnded(s v1.AssignmentState) bool {
	switch s {
	case v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, v1.AssignmentState_ASSIGNMENT_STATE_REVERTED,
		v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED,
		v1.AssignmentState_ASSIGNMENT_STATE_FAILED:
		return true
	}
	return false
}

// stateName turns RELEASE_STATE_AWAITING_APPROVAL into "awaiting_approval"
// for messages operators read.
func stateName(e fmt.Stringer) string {
	n := e.String()
	if _, after, ok := strings.Cut(n, "STATE_"); ok {
		n = after
	}
	return strings.ToLower(n)
}
