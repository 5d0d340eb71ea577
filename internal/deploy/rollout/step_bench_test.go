package rollout_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// benchPhaseHosts is the size of the largest phase of a 10,000-host
// rollout (max_size 25 %).
const benchPhaseHosts = 2500

// deployingPhase returns a cluster whose release "r" has one phase of n
// hosts, every one of them healthy but the last (still baking): the phase
// stays deploying, and each step is the work the release's goroutine does
// on each wake-up while a big phase deploys (it writes nothing).
func deployingPhase(tb testing.TB, n int) *cluster {
	hosts := map[string]string{}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("h%05d", i)
		hosts[id] = fmt.Sprintf("cell-%d", i%10)
		ids = append(ids, id)
	}
	c := newCluster(tb, hosts)
	c.submit("r", [][]string{ids}, nil)
	c.settle("r")
	var ups []*v1.AssignmentUpdate
	for i, h := range ids {
		a := c.state().Assignment(h, "api")
		last := healthy
		if i == n-1 {
			last = v1.AssignmentState_ASSIGNMENT_STATE_BAKING
		}
		for _, st := range []v1.AssignmentState{v1.AssignmentState_ASSIGNMENT_STATE_STAGING, v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
			v1.AssignmentState_ASSIGNMENT_STATE_BAKING, healthy} {
			ups = append(ups, &v1.AssignmentUpdate{Host: h, App: "api", Generation: a.GetGeneration(), State: st})
			if st == last {
				break
			}
		}
	}
	c.must(raftfsm.UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: c.now.UnixNano(), Updates: ups})
	c.settle("r")
	c.wantPhase("r", 0, deploying)
	return c
}

// BenchmarkStepDeployingPhase: one wake-up of a release's goroutine while
// a 2,500-host phase deploys (assignMissing, classify, budget gates). It
// runs after every raft entry about the release, so during a big phase
// its cost is paid once per progress entry.
func BenchmarkStepDeployingPhase(b *testing.B) {
	c := deployingPhase(b, benchPhaseHosts)
	before := c.state().AppliedIndex()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.o.StepForTest(context.Background(), "r"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c.state().AppliedIndex() != before {
		b.Fatal("a step of a deploying phase with a host pending wrote to raft")
	}
	c.wantPhase("r", 0, deploying)
}
