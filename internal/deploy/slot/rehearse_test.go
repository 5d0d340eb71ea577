//go:build linux

package slot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// rehearseEnv is a host that swapped v1 → v2 (generation 2) with keepOld.
func rehearseEnv(t *testing.T, keepOld string) *env {
	t.Helper()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Slots.KeepOld = keepOld
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) rehearse(max time.Duration, ready ReadyFunc) (Rehearsal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.m.Rehearse(ctx, testApp, 2, max, ready)
}

// A good rehearsal really serves the old version (checked while it rolls
// forward), records its rollback time, and leaves the host as it was: the
// new slot serving, the old one hot or stopped as keep_old says, no
// assignment state change. Asking again answers from the record.
func TestRehearseRollsBackAndForward(t *testing.T) {
	t.Parallel()
	for _, keepOld := range []string{"hot", "cold"} {
		t.Run(keepOld, func(t *testing.T) {
			t.Parallel()
			e := rehearseEnv(t, keepOld)
			reportsBefore := len(e.prog.all(2))
			var calls atomic.Int32
			var servedOld atomic.Bool
			ready := func(ctx context.Context, port int) error {
				calls.Add(1)
				if port == e.green { // rolling forward: the old version serves now
					if got, err := get(e.proxyAddr()); err == nil && got == "v1" {
						servedOld.Store(true)
					}
				}
				return httpReady(ctx, port)
			}
			r, err := e.rehearse(30*time.Second, ready)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK || r.RollbackMS <= 0 || !r.RolledForward || r.OldVersion != "v1" || r.NewVersion != "v2" || r.MaxRollbackMS != 30_000 {
				t.Fatalf("rehearsal = %+v; want ok with a rollback time, v1 → v2", r)
			}
			if !servedOld.Load() {
				t.Fatal("the proxy never served the old version during the rehearsal")
			}
			st := e.state()
			if st.Active != Green || st.Op != nil || st.Rehearsal == nil || *st.Rehearsal != r {
				t.Fatalf("after the rehearsal: active %s op %+v rehearsal %+v", st.Active, st.Op, st.Rehearsal)
			}
			if st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING || len(e.prog.all(2)) != reportsBefore {
				t.Fatalf("the rehearsal changed the assignment: %s, reports %v", st.Phase, e.prog.states(2))
			}
			waitBody(t, e.proxyAddr(), "v2")
			want := []Name{Blue, Green}
			if keepOld == "cold" {
				want = []Name{Green}
			}
			if got := e.running(); !slices.Equal(got, want) {
				t.Fatalf("running = %v, want %v", got, want)
			}
			n := calls.Load()
			again, err := e.rehearse(30*time.Second, ready)
			if err != nil || again != r || calls.Load() != n {
				t.Fatalf("second rehearsal = %+v, %v (ready calls %d → %d); want the recorded result, nothing redone", again, err, n, calls.Load())
			}
		})
	}
}

// An old slot that cannot start (its port is taken) fails the rehearsal
// with the reason; traffic never leaves the new slot.
func TestRehearseOldSlotCannotStart(t *testing.T) {
	t.Parallel()
	e := rehearseEnv(t, "cold")
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", e.blue))
	if err != nil {
		t.Fatalf("taking the old slot's port: %v", err)
	}
	defer l.Close()
	r, err := e.rehearse(3*time.Second, httpReady)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || r.RollbackMS != 0 || !r.RolledForward || !strings.Contains(r.Reason, "rollback to blue (version v1) failed at "+StepRehearseStartOld) {
		t.Fatalf("rehearsal = %+v; want a failure at %s naming the old slot", r, StepRehearseStartOld)
	}
	if st := e.state(); st.Active != Green || st.Op != nil || st.Rehearsal == nil || st.Rehearsal.OK {
		t.Fatalf("after the failed rehearsal: active %s op %+v rehearsal %+v", st.Active, st.Op, st.Rehearsal)
	}
	mustBody(t, e.proxyAddr(), "v2")
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running = %v, want [green]", got)
	}
}

// An old slot that does not pass its checks within max_rollback_time
// fails the rehearsal as too slow.
func TestRehearseTooSlow(t *testing.T) {
	t.Parallel()
	e := rehearseEnv(t, "hot")
	slow := func(ctx context.Context, port int) error {
		if port == e.blue {
			<-ctx.Done() // never healthy in time
			return ctx.Err()
		}
		return httpReady(ctx, port)
	}
	r, err := e.rehearse(200*time.Millisecond, slow)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || !strings.Contains(r.Reason, "not healthy within max_rollback_time 200ms") {
		t.Fatalf("rehearsal = %+v; want too slow", r)
	}
	if st := e.state(); st.Active != Green || st.Op != nil {
		t.Fatalf("after: active %s op %+v", st.Active, st.Op)
	}
	mustBody(t, e.proxyAddr(), "v2")
}

// Rehearsing needs a baking generation; a first deploy has nothing to go
// back to and is skipped.
func TestRehearseRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	ctx := context.Background()
	r, err := e.m.Rehearse(ctx, testApp, 1, time.Second, httpReady)
	if err != nil || !r.OK || !strings.Contains(r.Reason, "first deploy") {
		t.Fatalf("first deploy: %+v, %v; want skipped", r, err)
	}
	if _, err := e.m.Rehearse(ctx, testApp, 2, time.Second, httpReady); !errors.Is(err, ErrWrongState) {
		t.Fatalf("unknown generation: %v", err)
	}
	if _, err := e.m.Rehearse(ctx, testApp, 1, 0, httpReady); err == nil {
		t.Fatal("zero max rollback time accepted")
	}
	e.mustSwap(2, "v2")
	if err := e.m.Revert(ctx, testApp, "test", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Rehearse(ctx, testApp, 2, time.Second, httpReady); !errors.Is(err, ErrWrongState) {
		t.Fatalf("reverted generation: %v", err)
	}
}

// An agent killed at any step of a rehearsal comes back on the new slot,
// serving it alone, with the rehearsal recorded (as failed unless it had
// completed).
func TestRehearseCrashRecovery(t *testing.T) {
	t.Parallel()
	var points []string
	for _, s := range []string{StepRehearseStartOld, StepRehearseSwitchBack, StepRehearseForward} {
		points = append(points, "rehearse/"+s+"/begin", "rehearse/"+s+"/done")
	}
	for _, keepOld := range []string{"hot", "cold"} {
		for _, point := range points {
			t.Run(keepOld+"/"+strings.ReplaceAll(point, "/", "_"), func(t *testing.T) {
				t.Parallel()
				e := rehearseEnv(t, keepOld)
				hit := e.crashAt(point)
				_, err := e.rehearse(30*time.Second, httpReady)
				if !*hit || !errors.Is(err, errTestCrash) {
					t.Fatalf("crash point %s not hit (hit=%v, err=%v)", point, *hit, err)
				}
				e.killAndReconcile()
				st := e.state()
				if st.Op != nil || st.Active != Green || st.Rehearsal == nil || st.Rehearsal.Generation != 2 {
					t.Fatalf("after crash at %s: op %+v active %s rehearsal %+v", point, st.Op, st.Active, st.Rehearsal)
				}
				completed := point == "rehearse/"+StepRehearseForward+"/done"
				if st.Rehearsal.OK != completed || (!completed && !strings.Contains(st.Rehearsal.Reason, "agent restarted")) {
					t.Fatalf("after crash at %s: rehearsal %+v", point, *st.Rehearsal)
				}
				if st.PhaseState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING {
					t.Fatalf("after crash at %s: phase %s", point, st.Phase)
				}
				if got := e.running(); !slices.Equal(got, []Name{Green}) {
					t.Fatalf("running = %v, want [green]", got)
				}
				waitBody(t, e.proxyAddr(), "v2")
				// The host is usable: a revert works from here.
				if err := e.m.RevertChecked(context.Background(), testApp, "after", false, httpReady); err != nil {
					t.Fatal(err)
				}
				waitBody(t, e.proxyAddr(), "v1")
			})
		}
	}
}
