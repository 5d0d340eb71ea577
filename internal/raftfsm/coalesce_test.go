package raftfsm

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"pgregory.net/rapid"
)

// TestUpdateBatchSameAsOneStepPerEntry: an UpdateAssignments entry stores
// each assignment once, with its last state (applyUpdateAssignments), but
// must leave exactly the state that applying its updates one per entry
// leaves: the same assignments, the same events in the same order with
// the same seqs, the same applied/skipped counts. The updates are random:
// several steps of one assignment, interleaved with others, stale
// generations, illegal jumps, repeats, unknown hosts, with and without
// events.
func TestUpdateBatchSameAsOneStepPerEntry(t *testing.T) {
	hosts := []string{"h1", "h2", "h3"}
	apps := []string{"api", "web"}
	states := allEnum[v1.AssignmentState](int32(len(v1.AssignmentState_name) - 1))
	rapid.Check(t, func(t *rapid.T) {
		var setup []cmd
		setup = append(setup, hostsCmd("eu-1", hosts...), cellCmd("eu-1", 1, "low", 100))
		for _, app := range apps {
			setup = append(setup, submitCmd(app+"-1", app, 2), relStateCmd(app+"-1", rsRunning))
			for _, h := range hosts {
				// Some (host, app) are at generation 2 after a failed 1.
				if rapid.Bool().Draw(t, "gen2 "+h+" "+app) {
					setup = append(setup, assignCmd(h, app, app+"-1", 1), updateCmd(h, app, 1, asFailed))
				}
				setup = append(setup, assignCmd(h, app, app+"-1", 2))
			}
		}
		n := rapid.IntRange(1, 40).Draw(t, "updates")
		batch := &v1.UpdateAssignmentsCommand{TimeUnixNano: t0 + 77}
		for i := range n {
			u := &v1.AssignmentUpdate{
				Host:       rapid.SampledFrom(append(hosts, "h9")).Draw(t, "host"),
				App:        rapid.SampledFrom(apps).Draw(t, "app"),
				Generation: rapid.Uint64Range(1, 3).Draw(t, "gen"),
				// Mostly the next steps of the happy or the revert path.
				State:  prefer(t, "state", []v1.AssignmentState{asStaging, asSwitched, asBaking, asHealthy, asFinalized, asReverting, asReverted}, states),
				Reason: fmt.Sprintf("step %d", i),
			}
			if rapid.Bool().Draw(t, "event") {
				u.Event = &v1.Event{Kind: "host.step", Actor: "agent", Message: fmt.Sprintf("step %d", i),
					Evidence: map[string]string{"i": fmt.Sprint(i)}}
			}
			batch.Updates = append(batch.Updates, u)
		}

		// applyTo applies c to f at its next index and returns the result.
		applyTo := func(f *FSM, c cmd) any {
			data, err := Encode(c.t, c.m)
			if err != nil {
				t.Fatal(err)
			}
			return f.Apply(&raft.Log{Index: f.State().AppliedIndex() + 1, Type: raft.LogCommand, Data: data})
		}
		one, each := New(nil), New(nil)
		for _, c := range setup {
			for _, f := range []*FSM{one, each} {
				if res := applyTo(f, c); res != nil {
					if _, ok := res.(*UpdateResult); !ok {
						t.Fatalf("setup %v: %v", c.t, res)
					}
				}
			}
		}
		got := applyTo(one, cmd{UpdateAssignments, batch}).(*UpdateResult)
		var want UpdateResult
		for _, u := range batch.Updates {
			r := applyTo(each, cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: batch.TimeUnixNano,
				Updates: []*v1.AssignmentUpdate{u}}}).(*UpdateResult)
			want.Applied += r.Applied
			want.Skipped += r.Skipped
		}
		if *got != want {
			t.Fatalf("one entry: %+v; one entry per update: %+v", *got, want)
		}
		if a, b := dumpNoIndex(one.State()), dumpNoIndex(each.State()); a != b {
			t.Fatalf("states differ\none entry:\n%s\none entry per update:\n%s", a, b)
		}
		if err := CheckInvariants(one.State()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUpdateBatchStoresEachAssignmentOnce: an entry with three steps of
// each of 100 assignments (SWITCHED, BAKING, HEALTHY, as an agent reports
// them back to back) costs far less than three entries of one step each:
// each assignment is stored once. Allocations are counted, not time: they
// do not depend on the machine's load. Storing every step (as before)
// allocates ~2.6× the one-step entry; the bound is 2×.
func TestUpdateBatchStoresEachAssignmentOnce(t *testing.T) {
	const n = 100
	var hosts []string
	for i := range n {
		hosts = append(hosts, fmt.Sprintf("h%03d", i))
	}
	setup := []cmd{hostsCmd("eu-1", hosts...), cellCmd("eu-1", 1, "low", 100), submitCmd("api-1", "api", 2), relStateCmd("api-1", rsRunning)}
	for _, h := range hosts {
		setup = append(setup, assignCmd(h, "api", "api-1", 1), updateCmd(h, "api", 1, asStaging))
	}
	entry := func(steps ...v1.AssignmentState) []byte {
		c := &v1.UpdateAssignmentsCommand{TimeUnixNano: t0 + 50}
		for _, h := range hosts {
			for _, st := range steps {
				c.Updates = append(c.Updates, &v1.AssignmentUpdate{Host: h, App: "api", Generation: 1, State: st})
			}
		}
		return encodeCmd(t, cmd{UpdateAssignments, c})
	}
	// allocs is the fewest allocations of applying data to a fresh copy
	// of the set-up state over a few runs (the copy is made outside the
	// count; the fewest, so that any other goroutine's allocations do not
	// count).
	allocs := func(data []byte, want int) float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		fewest := uint64(math.MaxUint64)
		for range 5 {
			f := New(nil)
			mustApply(t, f, setup...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err := f.ApplyEntry(f.State().AppliedIndex()+1, data)
			runtime.ReadMemStats(&after)
			if err != nil || res.Applied != want {
				t.Fatalf("apply: %+v, %v; want %d applied", res, err, want)
			}
			fewest = min(fewest, after.Mallocs-before.Mallocs)
		}
		return float64(fewest)
	}
	one := allocs(entry(asSwitched), n)
	three := allocs(entry(asSwitched, asBaking, asHealthy), 3*n)
	t.Logf("allocations: one step per assignment %.0f, three steps %.0f (%.2f×)", one, three, three/one)
	if three > 2*one {
		t.Errorf("an entry of three steps per assignment allocates %.0f, %.2f× one step's %.0f: each step is being stored", three, three/one, one)
	}
}

// TestCopyAssignmentCopiesEveryField: copyAssignment (the apply's
// reflection-free copy) gives what proto.Clone gives for an Assignment
// with every field set, so a field added to the message and not to the
// copy fails here instead of being dropped on the next update.
func TestCopyAssignmentCopiesEveryField(t *testing.T) {
	a := &v1.Assignment{}
	m := a.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch fd.Kind() {
		case protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString("x-"+string(fd.Name())))
		case protoreflect.EnumKind:
			m.Set(fd, protoreflect.ValueOfEnum(1))
		case protoreflect.Uint64Kind:
			m.Set(fd, protoreflect.ValueOfUint64(uint64(fd.Number())))
		case protoreflect.Int64Kind:
			m.Set(fd, protoreflect.ValueOfInt64(int64(fd.Number())))
		case protoreflect.Int32Kind:
			m.Set(fd, protoreflect.ValueOfInt32(int32(fd.Number())))
		default:
			t.Fatalf("field %s is a %v: copyAssignment copies scalars and strings only; copy it deeply there and set it here", fd.Name(), fd.Kind())
		}
	}
	c := copyAssignment(a)
	if !proto.Equal(c, a) {
		t.Fatalf("copyAssignment dropped a field:\n got  %v\n want %v", c, a)
	}
	if c == a {
		t.Fatal("copyAssignment returned its argument")
	}
}
