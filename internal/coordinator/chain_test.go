package coordinator_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// chainSource is chain "fmt": release a, then b after it (after = the
// given value; "" leaves it out).
func chainSource(after string) []byte {
	b := string(specSource("b", "api"))
	if after != "" {
		b = strings.Replace(b, "{\n", fmt.Sprintf("{\n  after = %q\n  min_gap = \"1h\"\n", after), 1)
	}
	return []byte("chain \"fmt\" {\n" + string(specSource("a", "api")) + b + "}\n")
}

// Chains go through the same ACL checks as releases (submit and rollback
// need deploy, status and list read), bad chain specs are refused naming
// the release and field, and a chain rollback of a chain whose first
// release never started ends it, rolled back.
func TestChainRPCs(t *testing.T) {
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	fc := c.Client(c.Followers()[0])
	bg := ctx(t)
	boot, err := fc.ACLBootstrap(bg, &rollwavev1.ACLBootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := coordtest.WithToken(bg, boot.GetSecret())
	tok := func(name, role string) string {
		resp, err := fc.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetSecret()
	}
	readCtx := coordtest.WithToken(bg, tok("reader", raftfsm.RoleRead))
	deployCtx := coordtest.WithToken(bg, tok("deployer", raftfsm.RoleDeploy))

	good := &rollwavev1.SubmitChainRequest{SourceName: "fmt.hcl", Source: chainSource("a"), Actor: "mallory"}
	_, err = fc.SubmitChain(readCtx, good)
	wantCode(t, "read token submits a chain", err, codes.PermissionDenied, "SubmitChain needs role deploy")
	_, err = fc.RollbackChain(readCtx, &rollwavev1.ChainActionRequest{Name: "fmt"})
	wantCode(t, "read token rolls a chain back", err, codes.PermissionDenied, "RollbackChain needs role deploy")
	_, err = fc.GetChain(readCtx, &rollwavev1.GetChainRequest{Name: "fmt"})
	wantCode(t, "unknown chain", err, codes.NotFound, `no chain named "fmt"`)

	_, err = fc.SubmitChain(deployCtx, &rollwavev1.SubmitChainRequest{SourceName: "fmt.hcl", Source: chainSource("zzz")})
	wantCode(t, "wrong after", err, codes.InvalidArgument, `fmt.hcl:`, `chain.release["b"].after: must name the release just before it, "a"`)
	_, err = fc.SubmitChain(deployCtx, &rollwavev1.SubmitChainRequest{SourceName: "fmt.hcl", Source: chainSource("")})
	wantCode(t, "missing after", err, codes.InvalidArgument, `missing required field "after"`)
	if ls, err := fc.ListChains(readCtx, &rollwavev1.ListChainsRequest{}); err != nil || len(ls.GetChains()) != 0 {
		t.Fatalf("refused chains were stored: %v %v", ls, err)
	}

	// No agents here: the first release is stored pending, unplanned.
	sub, err := fc.SubmitChain(deployCtx, good)
	if err != nil {
		t.Fatal(err)
	}
	if ch := sub.GetChain(); ch.GetCreatedBy() != "deployer" || len(ch.GetSteps()) != 2 || ch.GetSteps()[1].GetMinGapMs() != time.Hour.Milliseconds() {
		t.Fatalf("chain = %v", ch)
	}
	_, err = fc.SubmitChain(deployCtx, good)
	wantCode(t, "second submit", err, codes.AlreadyExists, `chain named "fmt" exists already`)
	st, err := fc.GetChain(readCtx, &rollwavev1.GetChainRequest{Name: "fmt"})
	if err != nil || st.GetSteps()[0].GetRelease().GetState() != rollwavev1.ReleaseState_RELEASE_STATE_PENDING ||
		st.GetSteps()[1].GetRelease() != nil || !strings.Contains(st.GetSteps()[1].GetWaiting(), `release "a" is pending`) {
		t.Fatalf("status = %v, %v", st, err)
	}

	if _, err := fc.RollbackChain(deployCtx, &rollwavev1.ChainActionRequest{Name: "fmt", Reason: "changed our minds"}); err != nil {
		t.Fatal(err)
	}
	_, err = fc.RollbackChain(deployCtx, &rollwavev1.ChainActionRequest{Name: "fmt"})
	wantCode(t, "second rollback", err, codes.FailedPrecondition, "only an active, succeeded or halted chain rolls back")
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		st, err := fc.GetChain(readCtx, &rollwavev1.GetChainRequest{Name: "fmt"})
		if err != nil {
			return false, err.Error()
		}
		return st.GetChain().GetState() == rollwavev1.ChainState_CHAIN_STATE_ROLLED_BACK &&
				st.GetSteps()[0].GetRelease().GetState() == rollwavev1.ReleaseState_RELEASE_STATE_ABORTED,
			fmt.Sprintf("chain %v, first release %v", st.GetChain().GetState(), st.GetSteps()[0].GetRelease().GetState())
	})
}
