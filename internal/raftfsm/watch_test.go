package raftfsm

import (
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const rsWatching = v1.ReleaseState_RELEASE_STATE_WATCHING

func watchCmd(id string, until int64) cmd {
	return cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 10, ReleaseId: id, State: rsWatching,
		Reason: "every phase verified", Actor: "rollout", CurrentPhase: -1, WatchUntilUnixNano: until}}
}

// post_rollout.watch: running -> watching stores the window's end from the
// command; watching stays the app's active release and ends succeeded,
// rolling_back or aborted, never back to running.
func TestWatchingState(t *testing.T) {
	f := New(nil)
	mustApply(t, f, base()...)

	// No end, or an end not after the command's time: rejected, nothing changes.
	before := dumpNoIndex(f.State())
	asRejected(t, apply(t, f, watchCmd("api-1", 0)))
	asRejected(t, apply(t, f, watchCmd("api-1", t0+10)))
	if after := dumpNoIndex(f.State()); after != before {
		t.Fatalf("a rejected watching changed the state:\n%s\nwant\n%s", after, before)
	}

	mustApply(t, f, watchCmd("api-1", t0+5000))
	r := f.State().Release("api-1")
	if r.GetState() != rsWatching || r.GetWatchUntilUnixNano() != t0+5000 {
		t.Fatalf("release = %s until %d, want watching until %d", r.GetState(), r.GetWatchUntilUnixNano(), t0+5000)
	}
	if a := f.State().App("api"); a.GetActiveReleaseId() != "api-1" {
		t.Fatalf("app active release = %q, want api-1 (watching is not terminal)", a.GetActiveReleaseId())
	}
	asRejected(t, apply(t, f, relStateCmd("api-1", rsRunning)))
	asRejected(t, apply(t, f, relStateCmd("api-1", rsPaused)))

	// A rollback inside the window is allowed ...
	mustApply(t, f, relStateCmd("api-1", rsRollBack), relStateCmd("api-1", rsRolled))
	// ... and after it (succeeded) it is not.
	mustApply(t, f, submitCmd("api-2", "api", 1), relStateCmd("api-2", rsRunning), watchCmd("api-2", t0+5000), relStateCmd("api-2", rsSucceed))
	asRejected(t, apply(t, f, relStateCmd("api-2", rsRollBack)))
	if a := f.State().App("api"); a.GetCurrentVersion() != "v-api-2" || a.GetActiveReleaseId() != "" {
		t.Fatalf("app = %v, want current version v-api-2 and no active release", a)
	}
	if err := CheckInvariants(f.State()); err != nil {
		t.Fatal(err)
	}
}
