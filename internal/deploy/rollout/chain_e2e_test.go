package rollout_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// chainSpec wraps two release specs of the fleet into chain "fmt":
// read-new, then write-new after it with min_gap.
func (f *fleet) chainSpec(gap string) []byte {
	first := f.spec("read-new", "5.0.0", specOpts{})
	second := f.spec("write-new", "5.1.0", specOpts{})
	second = strings.Replace(second, "{\n", fmt.Sprintf("{\n  after   = \"read-new\"\n  min_gap = %q\n", gap), 1)
	return []byte("chain \"fmt\" {\n" + first + second + "}\n")
}

func (f *fleet) chainState(name string) *v1.Chain { return f.leader().FSM().State().Chain(name) }

// Issue 18 item 1, in-process cluster: the second release of a chain
// starts only once the first succeeded and min_gap passed, and a leader
// killed during the gap leaves the chain to the next leader, which starts
// it once, with its evidence. While the second is live, a rollback of the
// first alone is refused naming the chain.
func TestE2EChainAcrossLeaderFailover(t *testing.T) {
	f := newFleetOf(t, 3, 1)
	src := f.chainSpec("4s")
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		_, err := f.client().SubmitChain(ctxT(t), &v1.SubmitChainRequest{SourceName: "fmt.hcl", Source: src, Start: true, Actor: "test"})
		switch status.Code(err) {
		case codes.OK, codes.AlreadyExists:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, err.Error()
		}
		t.Fatalf("submit chain: %v", err)
		return false, ""
	})
	first := f.waitRelease("read-new", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	if f.release("write-new") != nil {
		t.Fatal("write-new submitted before its min_gap passed")
	}
	// The gap runs: the leader that saw the success goes.
	old := f.c.Index(f.leader())
	f.c.Kill(old)
	nl := f.c.Index(f.c.Leader(15 * time.Second))
	t.Logf("leader %s killed during the gap; %s leads", f.c.Configs[old].NodeID, f.c.Configs[nl].NodeID)
	second := f.waitRelease("write-new", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)
	if gap := second.GetCreatedUnixNano() - first.GetUpdatedUnixNano(); gap < (4 * time.Second).Nanoseconds() {
		t.Fatalf("write-new started %s after read-new succeeded, min_gap is 4s", time.Duration(gap))
	}
	var started []*v1.Event
	for _, e := range f.eventsOf("write-new") {
		if e.GetKind() == "chain.step_started" {
			started = append(started, e)
		}
	}
	if len(started) != 1 || started[0].GetEvidence()["after"] != "read-new" || started[0].GetEvidence()["drifted_hosts"] != "0" {
		t.Fatalf("chain.step_started events: %v\n%s", started, f.dump("write-new"))
	}
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		c := f.chainState("fmt")
		return c.GetState() == v1.ChainState_CHAIN_STATE_SUCCEEDED, fmt.Sprintf("chain is %v", c.GetState())
	})
	f.waitServing(f.hosts, "5.1.0", 5*time.Second)

	// The hosts run write-new: read-new alone is not rolled back.
	_, err := f.client().RollbackRelease(ctxT(t), &v1.ReleaseActionRequest{Id: "read-new", Actor: "test"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), `chain "fmt"`) || !strings.Contains(err.Error(), "rollwave chain rollback fmt") {
		t.Fatalf("rollback of read-new: %v", err)
	}
	// Nothing ran before read-new: the chain's rollback is refused up
	// front, changing nothing.
	_, err = f.client().RollbackChain(ctxT(t), &v1.ChainActionRequest{Name: "fmt", Actor: "test"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no earlier succeeded release") {
		t.Fatalf("chain rollback: %v", err)
	}
	st, err := f.client().GetChain(ctxT(t), &v1.GetChainRequest{Name: "fmt"})
	if err != nil || st.GetChain().GetState() != v1.ChainState_CHAIN_STATE_SUCCEEDED || len(st.GetSteps()) != 2 ||
		st.GetSteps()[1].GetRelease().GetState() != v1.ReleaseState_RELEASE_STATE_SUCCEEDED {
		t.Fatalf("chain status: %v %v", st, err)
	}
}
