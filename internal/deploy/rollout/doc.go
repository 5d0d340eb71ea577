// Package rollout is the leader's rollout orchestrator: it drives every
// running release phase by phase — deploying, baking, verified or failed —
// through the replicated state, with bake deadlines stored in raft as
// absolute times, health gates evaluated with their evidence recorded as
// audit events, and automatic rollback.
//
// The orchestrator is leader-only. SetEnabled(true) starts it when this
// server gains leadership (after the raft barrier); SetEnabled(false)
// stops it and waits. It reads *raftfsm.State, and wakes on State.Changed
// and on a ticker: each wake-up is a level-triggered reconcile that
// compares what raft says a release should be doing with what its hosts
// report, and takes the next step. Every step it takes is written through
// the narrow Writer and Agents interfaces (a coordinator adapter in
// production, fakes in tests), so nothing it knows lives only in memory
// except per-second samples and "already logged" flags; a new leader
// continues each release from raft, with the same bake deadlines.
//
// One goroutine runs per release that is running, paused, awaiting
// approval or rolling back. What it does, by release state:
//
//   - running: plan the release if it has no phases (SetReleasePlan);
//     start the current phase unless a freeze window or the global freeze
//     holds it (one "phase.held" event); assign its hosts (one
//     CreateAssignments); watch the host gate and the failed and
//     unreachable budgets; once every host is healthy or failed, bake
//     until the stored deadline; then evaluate the phase gates
//     (thresholds, budgets, baseline comparison) and verify the phase,
//     wait for approval if asked, advance (AdvancePhase), and after the
//     last phase finalize every host and succeed.
//   - paused, awaiting approval: nothing advances. Bake deadlines are
//     absolute, so a bake keeps counting while paused; on resume the gates
//     are read at once if the deadline passed.
//   - rolling back: order every host this release switched back to its
//     old slot, wait (bounded) for the reverts, then rolled_back, or
//     failed when some host could not revert.
//
// A decision and its evidence are one raft entry: the phase.started event
// rides in the transition to deploying, the gate readings in the
// transition to baking, verified or failed (or in the pause of an
// inconclusive bake), so a leader lost between reading the gates and
// writing the decision leaves neither behind, and the next leader takes
// the decision once.
//
// A failing gate records gate.failed with its readings, fails the phase,
// and applies rollback.on_failure: "all" rolls the whole release back;
// "phase" reverts only the failed phase's switched hosts and pauses the
// release for a human (rollback or abort next); "pause" only pauses. An
// inconclusive gate (too few baseline samples, no metrics) pauses the
// release with gate.inconclusive: it never passes silently.
package rollout
