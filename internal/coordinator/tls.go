package coordinator

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/tlsutil"
)

// tlsReadBufferSize is the gRPC read buffer of a TLS connection. grpc-go
// reads a plain TCP connection into pooled buffers only while data is
// ready, but puts a bufio.Reader of ReadBufferSize (default 32 KiB) in
// front of anything else, a TLS connection included, for the
// connection's lifetime: 32 KiB per agent on the leader. The TLS
// connection buffers a whole record itself, and bufio reads larger than
// its buffer bypass it, so 4 KiB costs nothing measurable and saves
// ~30 MiB of heap per 1,000 agents (docs/performance.md). It does not
// bound message sizes (maxMessageSize does).
const tlsReadBufferSize = 4 << 10

// methodRoles says which certificate roles may call which service: agents
// only the agent session; operators (cli) and other servers (forwarding,
// bootstrap checks) only the operator API.
var methodRoles = tlsutil.MethodRoles{
	"/rollwave.v1.AgentService/":    {tlsutil.RoleAgent},
	"/rollwave.v1.OperatorService/": {tlsutil.RoleCLI, tlsutil.RoleServer},
}

func (s *Server) grpcServerOptions() ([]grpc.ServerOption, error) {
	// sessionTap: agent sessions can be ended while their handler
	// receives (agent_service.go).
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMessageSize), grpc.InTapHandle(sessionTap)}
	// First in the chains, so a panic anywhere below (interceptors
	// included) becomes codes.Internal instead of ending the process.
	opts = append(opts, s.recoveryOptions()...)
	opts = append(opts, s.cfg.Limits.connectionOptions()...)
	if s.cfg.OperatorRateLimit > 0 {
		rl := newRateLimiter(s.cfg.OperatorRateLimit, s.cfg.OperatorRateBurst)
		rl.isServer = s.callerIsServer
		opts = append(opts, grpc.ChainUnaryInterceptor(rl.unary), grpc.ChainStreamInterceptor(rl.stream))
	}
	if s.tls != nil {
		tc, err := s.tls.ServerTLSConfig()
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		opts = append(opts,
			grpc.Creds(credentials.NewTLS(tc)),
			grpc.ReadBufferSize(tlsReadBufferSize),
			grpc.ChainUnaryInterceptor(tlsutil.UnaryAuthorizer(methodRoles)),
			grpc.ChainStreamInterceptor(tlsutil.StreamAuthorizer(methodRoles)),
		)
	}
	// ACL tokens are checked after the certificate's role (acl.go).
	if s.cfg.ACLEnabled {
		opts = append(opts,
			grpc.ChainUnaryInterceptor(s.aclUnaryInterceptor),
			grpc.ChainStreamInterceptor(s.aclStreamInterceptor),
		)
	}
	// URL credentials never leave in an operator response (redact.go).
	opts = append(opts, grpc.ChainUnaryInterceptor(redactUnary), grpc.ChainStreamInterceptor(redactStream))
	return opts, nil
}

// clientCreds are the credentials this server uses to call other servers.
func (s *Server) clientCreds() (grpc.DialOption, error) {
	if s.tls == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	tc, err := s.tls.ClientTLSConfig(tlsutil.RoleServer)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(tc)), nil
}

// ReloadTLS re-reads the certificate, key and CA (SIGHUP). Open
// connections stay up; new handshakes use the new files. A bad file keeps
// the old material and returns the error.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
}
