package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The one place the CLI builds its gRPC connection. Transport security (TLS,
// client certificates, tokens) is added here and nowhere else.

// dialOptions are the options every connection to a coordinator uses.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}
}

// connect returns an OperatorService client for the coordinator chosen by
// -address / ROLLWAVE_ADDR, and a function that closes the connection.
// grpc.NewClient does not dial: an unreachable address surfaces as
// codes.Unavailable on the first call, which Run reports with the address.
func (a *app) connect(cmd *cobra.Command) (rollwavev1.OperatorServiceClient, func(), error) {
	if a.timeout <= 0 {
		return nil, nil, usageErrorf("invalid -timeout %s: must be positive", a.timeout)
	}
	addr := a.resolvedAddress(cmd)
	if st := stateOf(cmd); st != nil {
		st.address = addr
	}
	conn, err := grpc.NewClient(addr, dialOptions()...)
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator address %q: %w", addr, err)
	}
	return rollwavev1.NewOperatorServiceClient(conn), func() { _ = conn.Close() }, nil
}

// unary returns a context bounded by -timeout for one unary call.
func (a *app) unary(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}
