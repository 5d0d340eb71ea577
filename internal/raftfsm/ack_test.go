package raftfsm

import (
	"errors"
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func ackCmd(id, actor string) cmd {
	return cmd{AckRelease, &v1.AckReleaseCommand{TimeUnixNano: t0 + 60, ReleaseId: id, Actor: actor, Reason: "on it"}}
}

// Issue 18 item 5: a failed release is acknowledged once; a release that
// did not fail, a second ack, an unknown id or a missing actor are refused
// and change nothing.
func TestAckRelease(t *testing.T) {
	f := New(nil)
	mustApply(t, f, base()...)

	// Running, no phase failed: nothing to acknowledge.
	before := dumpNoIndex(f.State())
	if rej := asRejected(t, apply(t, f, ackCmd("api-1", "ops"))); !errors.Is(rej, ErrConflict) || !containsStr(rej.Error(), "has not failed") {
		t.Fatalf("ack of a running release: %v", rej)
	}
	if rej := asRejected(t, apply(t, f, ackCmd("nope", "ops"))); !errors.Is(rej, ErrNotFound) {
		t.Fatalf("ack of an unknown release: %v", rej)
	}
	if after := dumpNoIndex(f.State()); after != before {
		t.Fatalf("a refused ack changed the state:\n%s\nwant\n%s", after, before)
	}

	// A failed phase is a failure, whatever the release's state.
	mustApply(t, f, phaseCmd("api-1", 0, v1.PhaseState_PHASE_STATE_DEPLOYING), phaseCmd("api-1", 0, v1.PhaseState_PHASE_STATE_FAILED))
	if rej := asRejected(t, apply(t, f, ackCmd("api-1", ""))); !errors.Is(rej, ErrInvalid) {
		t.Fatalf("ack without an actor: %v", rej)
	}
	mustApply(t, f, ackCmd("api-1", "ops"))
	r := f.State().Release("api-1")
	if r.GetAckedUnixNano() != t0+60 || r.GetAckedBy() != "ops" || r.GetAckReason() != "on it" {
		t.Fatalf("release = %v", r)
	}
	ev := f.State().Events("api-1", 0, 0)
	if last := ev[len(ev)-1]; last.GetKind() != "release.acked" || last.GetActor() != "ops" || last.GetTimeUnixNano() != t0+60 {
		t.Fatalf("last event = %v", last)
	}
	before = dumpNoIndex(f.State())
	if rej := asRejected(t, apply(t, f, ackCmd("api-1", "bob"))); !errors.Is(rej, ErrConflict) || !containsStr(rej.Error(), "already acknowledged by ops") {
		t.Fatalf("second ack: %v", rej)
	}
	if after := dumpNoIndex(f.State()); after != before {
		t.Fatal("a second ack changed the state")
	}

	// A rollback ordered by hand is a failure too.
	mustApply(t, f, relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK))
	mustApply(t, f, submitCmd("web-1", "web", 1), relStateCmd("web-1", rsRunning), relStateCmd("web-1", v1.ReleaseState_RELEASE_STATE_ROLLING_BACK), ackCmd("web-1", "ops"))
}

// EachReleaseHistory hands out each release of the app with only the
// events of the kinds asked for.
func TestEachReleaseHistory(t *testing.T) {
	f := New(nil)
	mustApply(t, f, with(base(), one(submitCmd("web-1", "web", 1)))...)
	got := map[string][]string{}
	f.State().EachReleaseHistory("api", []string{"release.submitted", "release.running"}, func(r *v1.Release, evs []*v1.Event) bool {
		for _, e := range evs {
			got[r.GetId()] = append(got[r.GetId()], e.GetKind())
		}
		return true
	})
	if len(got) != 1 || len(got["api-1"]) != 2 || got["api-1"][0] != "release.submitted" || got["api-1"][1] != "release.running" {
		t.Fatalf("history = %v", got)
	}
	n := 0
	f.State().EachReleaseHistory("", nil, func(*v1.Release, []*v1.Event) bool { n++; return false })
	if n != 1 {
		t.Fatalf("a false return did not stop the scan: %d calls", n)
	}
}
