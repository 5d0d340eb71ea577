package tlsutil

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	agentMethod    = "/rollwave.v1.AgentService/Session"
	operatorMethod = "/rollwave.v1.OperatorService/Status"
	streamMethod   = "/rollwave.v1.OperatorService/WatchRelease"
	unlistedMethod = "/grpc.health.v1.Health/Check"
)

// testService registers unary methods that answer with the caller's role
// (checked through RoleFromContext) and one streaming method.
func registerTestServices(s *grpc.Server) {
	unary := func(method string) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: method, Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				if _, ok := RoleFromContext(ctx); !ok {
					return nil, status.Error(codes.Internal, "no role in context")
				}
				return &emptypb.Empty{}, nil
			}
			info := &grpc.UnaryServerInfo{FullMethod: "/" + serviceOf(method) + "/" + method}
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, info, h)
		}}
	}
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "rollwave.v1.AgentService", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{unary("Session")}}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "rollwave.v1.OperatorService", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{unary("Status")},
		Streams: []grpc.StreamDesc{{StreamName: "WatchRelease", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			if _, ok := RoleFromContext(ss.Context()); !ok {
				return status.Error(codes.Internal, "no role in context")
			}
			return ss.SendMsg(&emptypb.Empty{})
		}}}}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "grpc.health.v1.Health", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{unary("Check")}}, struct{}{})
}

func serviceOf(method string) string {
	switch method {
	case "Session":
		return "rollwave.v1.AgentService"
	case "Check":
		return "grpc.health.v1.Health"
	}
	return "rollwave.v1.OperatorService"
}

func startGRPC(t *testing.T, creds credentials.TransportCredentials) string {
	t.Helper()
	allowed := MethodRoles{
		"/rollwave.v1.AgentService/":    {RoleAgent},
		"/rollwave.v1.OperatorService/": {RoleCLI, RoleServer},
	}
	s := grpc.NewServer(grpc.Creds(creds),
		grpc.UnaryInterceptor(UnaryAuthorizer(allowed)),
		grpc.StreamInterceptor(StreamAuthorizer(allowed)))
	registerTestServices(s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

func call(t *testing.T, addr string, creds credentials.TransportCredentials, method string) codes.Code {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if method == streamMethod {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
		if err == nil {
			if err = st.SendMsg(&emptypb.Empty{}); err == nil {
				_ = st.CloseSend()
				err = st.RecvMsg(new(emptypb.Empty))
			}
		}
		return status.Code(err)
	}
	return status.Code(conn.Invoke(ctx, method, &emptypb.Empty{}, new(emptypb.Empty)))
}

func TestGRPCAuthorizer(t *testing.T) {
	p := newPKI(t)
	scfg, err := p.reloader(p.issue(RoleServer)).ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := startGRPC(t, credentials.NewTLS(scfg))
	creds := func(r Role) credentials.TransportCredentials { return credentials.NewTLS(p.clientConfig(r)) }

	cases := []struct {
		name   string
		role   Role
		method string
		want   codes.Code
	}{
		// An agent may open its session and nothing else.
		{"agent on agent service", RoleAgent, agentMethod, codes.OK},
		{"agent on operator service", RoleAgent, operatorMethod, codes.PermissionDenied},
		{"agent on operator stream", RoleAgent, streamMethod, codes.PermissionDenied},
		// The CLI operates but is no agent.
		{"cli on operator service", RoleCLI, operatorMethod, codes.OK},
		{"cli on operator stream", RoleCLI, streamMethod, codes.OK},
		{"cli on agent service", RoleCLI, agentMethod, codes.PermissionDenied},
		// Servers forward operator calls.
		{"server on operator service", RoleServer, operatorMethod, codes.OK},
		// A method no prefix lists is refused to everyone.
		{"unlisted method", RoleCLI, unlistedMethod, codes.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(t, addr, creds(tc.role), tc.method); got != tc.want {
				t.Errorf("code %v, want %v", got, tc.want)
			}
		})
	}
}

// Without TLS the authorizer refuses everything as unauthenticated.
func TestGRPCAuthorizerWithoutTLS(t *testing.T) {
	addr := startGRPC(t, insecure.NewCredentials())
	if got := call(t, addr, insecure.NewCredentials(), operatorMethod); got != codes.Unauthenticated {
		t.Errorf("code %v, want Unauthenticated", got)
	}
}

func TestMethodRolesLongestPrefix(t *testing.T) {
	m := MethodRoles{
		"/rollwave.v1.OperatorService/":           {RoleCLI},
		"/rollwave.v1.OperatorService/RemovePeer": {RoleServer},
	}
	if r, ok := m.allowed("/rollwave.v1.OperatorService/RemovePeer"); !ok || len(r) != 1 || r[0] != RoleServer {
		t.Errorf("RemovePeer: %v %v", r, ok)
	}
	if r, ok := m.allowed("/rollwave.v1.OperatorService/Status"); !ok || r[0] != RoleCLI {
		t.Errorf("Status: %v %v", r, ok)
	}
	if _, ok := m.allowed("/other/Method"); ok {
		t.Error("unlisted method matched")
	}
}
