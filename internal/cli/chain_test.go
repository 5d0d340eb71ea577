package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// chainStatus is the fake's chain: read-new succeeded, write-new waits
// for its min_gap.
func chainStatus() *rollwavev1.GetChainResponse {
	spec := func(v string) *rollwavev1.ReleaseSpec { return &rollwavev1.ReleaseSpec{App: "orders", Version: v} }
	return &rollwavev1.GetChainResponse{
		Chain: &rollwavev1.Chain{Name: "orders-format-v5", State: rollwavev1.ChainState_CHAIN_STATE_ACTIVE, CreatedBy: "alice",
			CreatedUnixNano: nanos(testNow.Add(-2 * time.Hour)),
			Steps: []*rollwavev1.ChainStep{
				{Name: "read-new", Spec: spec("5.0.0"), Started: true},
				{Name: "write-new", After: "read-new", MinGapMs: time.Hour.Milliseconds(), Spec: spec("5.1.0")},
			}},
		Steps: []*rollwavev1.ChainStepStatus{
			{Name: "read-new", Release: &rollwavev1.Release{Id: "read-new", State: rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED}},
			{Name: "write-new", Waiting: `"write-new" waits: min_gap 1h0m0s after "read-new" succeeded: 12m left`, GapRemainingMs: (12 * time.Minute).Milliseconds()},
		},
	}
}

func (f *fakeOperator) SubmitChain(_ context.Context, req *rollwavev1.SubmitChainRequest) (*rollwavev1.SubmitChainResponse, error) {
	return &rollwavev1.SubmitChainResponse{Chain: chainStatus().GetChain()}, f.record("SubmitChain", req)
}

func (f *fakeOperator) GetChain(_ context.Context, req *rollwavev1.GetChainRequest) (*rollwavev1.GetChainResponse, error) {
	return chainStatus(), f.record("GetChain", req)
}

func (f *fakeOperator) ListChains(_ context.Context, req *rollwavev1.ListChainsRequest) (*rollwavev1.ListChainsResponse, error) {
	return &rollwavev1.ListChainsResponse{Chains: []*rollwavev1.GetChainResponse{chainStatus()}}, f.record("ListChains", req)
}

func (f *fakeOperator) RollbackChain(_ context.Context, req *rollwavev1.ChainActionRequest) (*rollwavev1.GetChainResponse, error) {
	return chainStatus(), f.record("RollbackChain", req)
}

func TestChainCommands(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	r := runAt(t, addr, "chain", "status", "orders-format-v5").expect(t, ExitOK)
	for _, want := range []string{"orders-format-v5", "active", "read-new", "succeeded", "write-new", "not started", "12m", "min_gap 1h0m0s after"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("chain status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runAt(t, addr, "chain", "list").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "read-new (succeeded) -> write-new (not started)") {
		t.Errorf("chain list:\n%s", r.stdout)
	}
	runAt(t, addr, "chain", "rollback", "orders-format-v5", "-reason", "readers broke").expect(t, ExitOK)
	if req := lastRequest[*rollwavev1.ChainActionRequest](t, f, "RollbackChain"); req.GetName() != "orders-format-v5" || req.GetReason() != "readers broke" {
		t.Errorf("rollback request = %v", req)
	}
	file := filepath.Join(t.TempDir(), "c.hcl")
	if err := os.WriteFile(file, []byte(`chain "c" {}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runAt(t, addr, "chain", "start", file).expect(t, ExitOK)
	if req := lastRequest[*rollwavev1.SubmitChainRequest](t, f, "SubmitChain"); !req.GetStart() || req.GetSourceName() != file {
		t.Errorf("submit request = %v", req)
	}
	// Server refusals map to the usual exit codes.
	for _, tc := range []struct {
		method string
		code   codes.Code
		args   []string
		exit   int
	}{
		{"GetChain", codes.NotFound, []string{"chain", "status", "nope"}, ExitNotFound},
		{"SubmitChain", codes.InvalidArgument, []string{"chain", "submit", file}, ExitInvalid},
		{"RollbackChain", codes.FailedPrecondition, []string{"chain", "rollback", "c"}, ExitConflict},
	} {
		f.errs[tc.method] = status.Error(tc.code, "refused")
		runAt(t, addr, tc.args...).expect(t, tc.exit)
	}
	runAt(t, addr, "chain", "status").expect(t, ExitUsage)
}
