package coordinator

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/raftfsm"
)

// Errors keep their kind from where they arise to the client, in the
// manner of Nomad's structs/errors.go: the FSM and the handlers return
// errors wrapping one of raftfsm's sentinels (errors.Is works inside the
// server), and this file is the one place that turns a kind into a gRPC
// code. The status carries the kind's name in an ErrorInfo detail, so a
// follower that forwarded a request gets the same kind back from the
// leader (fromRemote), not just a code.

// errorDomain names rollwave in ErrorInfo details.
const errorDomain = "rollwave"

// errorKinds maps each sentinel to its gRPC code and the ErrorInfo reason
// that names it on the wire. Order matters only for errors wrapping two.
var errorKinds = []struct {
	kind   error
	code   codes.Code
	reason string
}{
	{raftfsm.ErrNotFound, codes.NotFound, "NOT_FOUND"},
	{raftfsm.ErrExists, codes.AlreadyExists, "ALREADY_EXISTS"},
	{raftfsm.ErrInvalid, codes.InvalidArgument, "INVALID"},
	{raftfsm.ErrConflict, codes.FailedPrecondition, "CONFLICT"},
	{raftfsm.ErrIllegalTransition, codes.FailedPrecondition, "ILLEGAL_TRANSITION"},
	{raftfsm.ErrPermissionDenied, codes.PermissionDenied, "PERMISSION_DENIED"},
	{ErrNotLeader, codes.Unavailable, "NOT_LEADER"},
}

// kindError is an error of one kind raised by the coordinator itself (a
// check in front of a command, a read of a missing object), optionally
// with the error that caused it.
type kindError struct {
	kind  error
	msg   string
	cause error
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// errorf returns an error of the given kind (a raftfsm sentinel) with a
// message for the operator.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// withKind gives err a kind; its message stays as it is.
func withKind(kind, err error) error {
	return &kindError{kind: kind, msg: err.Error(), cause: err}
}

// statusError is a gRPC status that still unwraps to its cause: raft's
// errors behind Unavailable, or the kind of an error a leader returned to
// a forwarding follower.
type statusError struct {
	st    *status.Status
	cause error
}

func (e *statusError) Error() string              { return e.st.Message() }
func (e *statusError) Unwrap() error              { return e.cause }
func (e *statusError) GRPCStatus() *status.Status { return e.st }

// withStatus returns err as a status error with code and message that
// still matches errors.Is(err, cause).
func withStatus(c codes.Code, cause error, format string, args ...any) error {
	return &statusError{st: status.Newf(c, format, args...), cause: cause}
}

// toStatus turns a handler's error into what goes on the wire: an error of
// a known kind becomes its code (with an ErrorInfo naming the kind), a
// context error its own code, and a status error stays as it is. Anything
// else is Unknown, as gRPC would make it.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.kind) {
			st := status.New(k.code, err.Error())
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: k.reason, Domain: errorDomain}); derr == nil {
				st = d
			}
			return st.Err()
		}
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return err
}

// fromRemote gives a status error received from another server (the
// leader, when forwarding) its kind back: the ErrorInfo's reason if there
// is one, else the kind its code stands for. The status itself is kept, so
// relaying it to the client changes nothing.
func fromRemote(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		for _, k := range errorKinds {
			if k.reason == info.GetReason() {
				return &statusError{st: st, cause: k.kind}
			}
		}
	}
	// From an older server, or a status a handler made itself: the code
	// stands for its first kind. Unavailable is left alone: it also means
	// the leader could not be reached at all.
	for _, k := range errorKinds {
		if k.code == st.Code() && k.code != codes.Unavailable {
			return &statusError{st: st, cause: k.kind}
		}
	}
	return err
}

// errorUnaryInterceptor and errorStreamInterceptor map every error a
// handler returns through toStatus. They sit innermost in the chain, next
// to the handlers.
func errorUnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(err)
}

func errorStreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return toStatus(handler(srv, ss))
}

// errorInterceptors are the server options that install them.
func errorInterceptors() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(errorUnaryInterceptor),
		grpc.ChainStreamInterceptor(errorStreamInterceptor),
	}
}
