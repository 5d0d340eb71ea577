package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestFleetFreezeKeyringACLErrorsHaveKinds: the refusals of the cell,
// freeze, keyring and ACL handlers match their raftfsm kind inside the
// server (errors.Is) and reach clients with the same gRPC codes as before.
func TestFleetFreezeKeyringACLErrorsHaveKinds(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(30 * time.Second)
	op := coordinator.OperatorForTest(s)
	cl := c.Client(s)
	now := time.Now()

	type call func(ctx context.Context) error
	cases := []struct {
		what     string
		in, wire call // in-process (the handler), and through gRPC
		kind     error
		wantCode codes.Code
	}{
		// A cell needs a name.
		{"set a cell without a name",
			func(ctx context.Context) error {
				_, err := op.SetCell(ctx, &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{}})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.SetCell(ctx, &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{}})
				return err
			},
			raftfsm.ErrInvalid, codes.InvalidArgument},
		// Deleting a cell nobody described.
		{"delete an unknown cell",
			func(ctx context.Context) error {
				_, err := op.DeleteCell(ctx, &rollwavev1.DeleteCellRequest{Name: "nowhere"})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.DeleteCell(ctx, &rollwavev1.DeleteCellRequest{Name: "nowhere"})
				return err
			},
			raftfsm.ErrNotFound, codes.NotFound},
		// A freeze window without a reason.
		{"add a freeze without a reason",
			func(ctx context.Context) error {
				_, err := op.AddFreeze(ctx, &rollwavev1.AddFreezeRequest{FromUnixNano: now.UnixNano(), ToUnixNano: now.Add(time.Hour).UnixNano()})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.AddFreeze(ctx, &rollwavev1.AddFreezeRequest{FromUnixNano: now.UnixNano(), ToUnixNano: now.Add(time.Hour).UnixNano()})
				return err
			},
			raftfsm.ErrInvalid, codes.InvalidArgument},
		// Removing a freeze window that does not exist.
		{"remove an unknown freeze",
			func(ctx context.Context) error {
				_, err := op.RemoveFreeze(ctx, &rollwavev1.RemoveFreezeRequest{Id: "nope"})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.RemoveFreeze(ctx, &rollwavev1.RemoveFreezeRequest{Id: "nope"})
				return err
			},
			raftfsm.ErrNotFound, codes.NotFound},
		// The global freeze needs a reason.
		{"global freeze without a reason",
			func(ctx context.Context) error {
				_, err := op.SetGlobalFreeze(ctx, &rollwavev1.SetGlobalFreezeRequest{On: true})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.SetGlobalFreeze(ctx, &rollwavev1.SetGlobalFreezeRequest{On: true})
				return err
			},
			raftfsm.ErrInvalid, codes.InvalidArgument},
		// An unknown keyring operation.
		{"keyring with an unknown op",
			func(ctx context.Context) error {
				_, err := op.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: "rotate", Key: "AAAA"})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: "rotate", Key: "AAAA"})
				return err
			},
			raftfsm.ErrInvalid, codes.InvalidArgument},
		// ACL calls on a server without ACLs.
		{"acl token list without ACLs",
			func(ctx context.Context) error {
				_, err := op.ACLTokenList(ctx, &rollwavev1.ACLTokenListRequest{})
				return err
			},
			func(ctx context.Context) error {
				_, err := cl.ACLTokenList(ctx, &rollwavev1.ACLTokenListRequest{})
				return err
			},
			raftfsm.ErrConflict, codes.FailedPrecondition},
	}
	for _, tc := range cases {
		if err := tc.in(ctx(t)); !errors.Is(err, tc.kind) {
			t.Errorf("%s: handler returned %v, which does not match %v", tc.what, err, tc.kind)
		}
		if err := tc.wire(ctx(t)); status.Code(err) != tc.wantCode {
			t.Errorf("%s: client got %v (%v), want %v", tc.what, status.Code(err), err, tc.wantCode)
		}
	}
}

// TestACLInterceptorRefusalsKeepTheirCodes: the ACL interceptor sits
// outside the error interceptor; its refusals still reach clients with
// their codes.
func TestACLInterceptorRefusalsKeepTheirCodes(t *testing.T) {
	c := coordtest.NewCluster(t, 1, coordtest.WithACLs())
	s := c.Leader(30 * time.Second)
	cl := c.Client(s)
	_, err := cl.ListFreezes(ctx(t), &rollwavev1.ListFreezesRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("before bootstrap: %v (%v), want FailedPrecondition", status.Code(err), err)
	}
	boot, err := cl.ACLBootstrap(ctx(t), &rollwavev1.ACLBootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := coordtest.WithToken(ctx(t), boot.GetSecret())
	rd, err := cl.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: "reader", Role: raftfsm.RoleRead})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.SetCell(coordtest.WithToken(ctx(t), rd.GetSecret()), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "edge"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("read token setting a cell: %v (%v), want PermissionDenied", status.Code(err), err)
	}
	_, err = cl.ListFreezes(ctx(t), &rollwavev1.ListFreezesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v (%v), want Unauthenticated", status.Code(err), err)
	}
}
