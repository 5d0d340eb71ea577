package coordinator

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/tlsutil"
)

// connBufferSize is the gRPC read and write buffer of every connection.
// grpc-go's defaults are 32 KiB each. On a TLS connection the read buffer
// is a bufio.Reader kept for the connection's lifetime (32 KiB per agent
// on the leader); on a plain TCP connection (readyConn) and for writes it
// is taken from a pool for each read and each burst of writes, and held
// until the connection's reader or writer goroutine has handled it. With
// thousands of agent connections busy at once (a phase's orders, every
// agent's reports, on a CPU-starved leader) those held buffers were the
// largest part of the leader's peak heap: 76 MiB of 163 MiB sampled at
// 5,000 agents during a rollout (docs/performance.md, "Coordinator
// memory"). Agent messages are a few hundred bytes; reads larger than the
// buffer bypass it, larger writes are flushed in several writes. It does
// not bound message sizes (maxMessageSize does).
const connBufferSize = 4 << 10

// headerTableSize is the HPACK dynamic table this server asks its clients
// to compress request headers against (SETTINGS_HEADER_TABLE_SIZE; the
// HTTP/2 default is 4,096 bytes). An agent opens one stream per
// connection and sends its headers once, when the session starts, so the
// table never saves a byte; yet the server's decoder kept the headers it
// was told to index for the life of every connection: ~0.3 KiB of heap
// per connected agent in a heap profile at 1,000 agents
// (docs/performance.md, "Coordinator memory"). The server's own encoder
// keeps a table of the response headers too (~0.6 KiB per agent), sized
// by the client's settings, which grpc-go's client does not expose. With
// 0 a client encodes headers with the static table and Huffman coding
// only. grpc-go clients apply the server's settings before their first
// request; a client that does not is still decoded (the decoder accepts
// the default table).
const headerTableSize = 0

// flowWindow is the server's fixed HTTP/2 flow-control window, per stream
// and per connection. Any fixed window turns off grpc-go's dynamic window
// (its BDP estimator), which otherwise answers every data frame that
// arrives on a quiet connection with a WINDOW_UPDATE and a BDP PING and
// then reads the PING's ack: for an agent's heartbeat every 2 s, three
// extra frames and a write and a read on the leader per heartbeat. At
// 10,000 agents (5,000 heartbeats/s) that was a large part of the
// leader's gRPC time (docs/performance.md, "Scaling"). 1 MiB is above
// any agent message and far below the 16 MiB the dynamic window may grow
// to; the sender just waits for a window update past it.
const flowWindow = 1 << 20

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
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMessageSize), grpc.InTapHandle(sessionTap),
		grpc.ReadBufferSize(connBufferSize), grpc.WriteBufferSize(connBufferSize), grpc.HeaderTableSize(headerTableSize),
		grpc.StaticStreamWindowSize(flowWindow), grpc.StaticConnWindowSize(flowWindow)}
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
