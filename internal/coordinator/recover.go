package coordinator

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recoveryOptions turn a panic in a gRPC handler (or an interceptor after
// this one) into codes.Internal and one ERROR log line with the stack, so
// that no request, however malformed, takes the coordinator down. Panics
// in goroutines a handler starts are not covered: those goroutines must
// not panic on input.
func (s *Server) recoveryOptions() []grpc.ServerOption {
	h := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		s.log.Error("recovered from a panic in a gRPC handler; the call failed with Internal",
			"method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Errorf(codes.Internal, "internal error while handling %s on server %s; the details are in that server's log", method, s.cfg.NodeID)
	})
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(recovery.UnaryServerInterceptor(h)),
		grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(h)),
	}
}
