package raftfsm

import (
	"errors"
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func overrideCmd(id, actor, reason string) cmd {
	return cmd{OverrideFreeze, &v1.OverrideFreezeCommand{TimeUnixNano: t0 + 70, ReleaseId: id, Actor: actor, Reason: reason}}
}

// Issue 18 item 4: a freeze override is recorded once on a live release
// with its freeze.overridden event; no reason, no actor, an unknown or
// ended release, or a second override are refused and change nothing.
func TestOverrideFreeze(t *testing.T) {
	f := New(nil)
	mustApply(t, f, base()...)
	before := dumpNoIndex(f.State())
	for _, c := range []struct {
		name string
		cmd  cmd
		kind error
	}{
		{"no reason", overrideCmd("api-1", "admin", ""), ErrInvalid},
		{"no actor", overrideCmd("api-1", "", "hotfix"), ErrInvalid},
		{"unknown release", overrideCmd("nope", "admin", "hotfix"), ErrNotFound},
	} {
		if rej := asRejected(t, apply(t, f, c.cmd)); !errors.Is(rej, c.kind) {
			t.Fatalf("%s: %v, want %v", c.name, rej, c.kind)
		}
	}
	if after := dumpNoIndex(f.State()); after != before {
		t.Fatal("a refused override changed the state")
	}
	mustApply(t, f, overrideCmd("api-1", "admin", "hotfix INC-9"))
	o := f.State().Release("api-1").GetFreezeOverride()
	if o.GetActor() != "admin" || o.GetReason() != "hotfix INC-9" || o.GetTimeUnixNano() != t0+70 {
		t.Fatalf("override = %v", o)
	}
	ev := f.State().Events("api-1", 0, 0)
	if last := ev[len(ev)-1]; last.GetKind() != "freeze.overridden" || last.GetActor() != "admin" {
		t.Fatalf("last event = %v", last)
	}
	if rej := asRejected(t, apply(t, f, overrideCmd("api-1", "bob", "again"))); !errors.Is(rej, ErrConflict) {
		t.Fatalf("second override: %v", rej)
	}
	mustApply(t, f, relStateCmd("api-1", v1.ReleaseState_RELEASE_STATE_ABORTED))
	mustApply(t, f, submitCmd("web-1", "web", 1))
	if rej := asRejected(t, apply(t, f, overrideCmd("api-1", "admin", "late"))); !errors.Is(rej, ErrConflict) {
		t.Fatalf("override of an ended release: %v", rej)
	}
}

// A recurring window needs a duration in (0, 31 days] and no from/to.
func TestAddRecurringFreeze(t *testing.T) {
	f := New(nil)
	add := func(w *v1.FreezeWindow) cmd {
		return cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: t0, Window: w}}
	}
	for _, w := range []*v1.FreezeWindow{
		{Id: "a", Cron: "@daily"},
		{Id: "b", Cron: "@daily", DurationMs: 32 * 24 * 3600 * 1000},
		{Id: "c", Cron: "@daily", DurationMs: 1000, FromUnixNano: 1, ToUnixNano: 2},
	} {
		if rej := asRejected(t, apply(t, f, add(w))); !errors.Is(rej, ErrInvalid) {
			t.Fatalf("window %v: %v", w, rej)
		}
	}
	mustApply(t, f, add(&v1.FreezeWindow{Id: "d", Cron: "@daily", DurationMs: 3600 * 1000, Timezone: "UTC"}))
	if ws := f.State().Freezes(); len(ws) != 1 || ws[0].GetCron() != "@daily" {
		t.Fatalf("freezes = %v", ws)
	}
}
