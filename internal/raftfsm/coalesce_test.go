package raftfsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
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
