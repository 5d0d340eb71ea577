package raftfsm

import (
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func abortCmd(id string, st v1.ReleaseState) cmd {
	return cmd{AbortRelease, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 50, ReleaseId: id, State: st, Reason: "stop", Actor: "ops", CurrentPhase: -1}}
}

// Issue 11 item 12: a release rolling back can be aborted with
// AbortRelease (type 20), which abandons its live assignments. The same
// transition through SetReleaseState stays rejected, so logs written
// before type 20 replay as they did.
func TestSecurityAbortReleaseFromRollingBack(t *testing.T) {
	f := New(nil)
	mustApply(t, f, with(base(), one(assignCmd("h1", "api", "api-1", 1), relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK)))...)

	asRejected(t, apply(t, f, relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_ABORTED)))
	if r := f.State().Release("api-1"); r.GetState() != v1.ReleaseState_RELEASE_STATE_ROLLING_BACK {
		t.Fatalf("SetReleaseState aborted a rolling back release: %v", r)
	}
	asRejected(t, apply(t, f, abortCmd("api-1", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK)))

	mustApply(t, f, abortCmd("api-1", v1.ReleaseState_RELEASE_STATE_ABORTED))
	if r := f.State().Release("api-1"); r.GetState() != v1.ReleaseState_RELEASE_STATE_ABORTED || r.GetReason() != "stop" {
		t.Fatalf("release = %v", r)
	}
	if a := f.State().Assignment("h1", "api"); a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED {
		t.Fatalf("assignment = %v", a)
	}
	if err := CheckInvariants(f.State()); err != nil {
		t.Fatal(err)
	}
	// Terminal stays terminal.
	asRejected(t, apply(t, f, abortCmd("api-1", v1.ReleaseState_RELEASE_STATE_ABORTED)))
	asRejected(t, apply(t, f, abortCmd("nope", v1.ReleaseState_RELEASE_STATE_ABORTED)))
	// From a running release it is an ordinary abort.
	mustApply(t, f, submitCmd("api-2", "api", 1), relStateCmd("api-2", rsRunning), abortCmd("api-2", v1.ReleaseState_RELEASE_STATE_ABORTED))
}
