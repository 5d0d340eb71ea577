package tlsutil

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// MethodRoles maps a gRPC full-method prefix to the roles allowed to call
// the methods under it, e.g.
//
//	tlsutil.MethodRoles{
//		"/rollwave.v1.AgentService/":    {tlsutil.RoleAgent},
//		"/rollwave.v1.OperatorService/": {tlsutil.RoleCLI, tlsutil.RoleServer},
//	}
//
// The longest matching prefix decides; a method no prefix matches is
// refused (deny by default).
type MethodRoles map[string][]Role

// allowed returns the roles for fullMethod and whether any prefix matched.
func (m MethodRoles) allowed(fullMethod string) ([]Role, bool) {
	best, found := -1, false
	var roles []Role
	for prefix, rs := range m {
		if strings.HasPrefix(fullMethod, prefix) && len(prefix) > best {
			best, roles, found = len(prefix), rs, true
		}
	}
	return roles, found
}

type roleKey struct{}

// RoleFromContext returns the caller's role that an authorizer
// interceptor stored in a handler's context.
func RoleFromContext(ctx context.Context) (Role, bool) {
	r, ok := ctx.Value(roleKey{}).(Role)
	return r, ok
}

// Authorize checks that the caller of fullMethod, as seen in ctx's gRPC
// peer, presented a verified certificate whose role allowed permits. It
// returns the role, or a status error: Unauthenticated when there is no
// TLS peer or no verified role, PermissionDenied when the role may not
// call the method.
func Authorize(ctx context.Context, fullMethod string, allowed MethodRoles) (Role, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", status.Error(codes.Unauthenticated, "no TLS peer: a client certificate is required")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", status.Errorf(codes.Unauthenticated, "connection is not TLS (%s)", p.AuthInfo.AuthType())
	}
	role, err := PeerRole(info.State)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	roles, matched := allowed.allowed(fullMethod)
	if !matched || !slices.Contains(roles, role) {
		return role, status.Errorf(codes.PermissionDenied, "a %s certificate may not call %s", role, fullMethod)
	}
	return role, nil
}

// UnaryAuthorizer returns a unary interceptor that refuses calls whose
// peer role allowed does not permit (see Authorize) and puts the role in
// the handler's context (RoleFromContext).
func UnaryAuthorizer(allowed MethodRoles) grpc.UnaryServerInterceptor {
	allowed = cloneRoles(allowed)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		role, err := Authorize(ctx, info.FullMethod, allowed)
		if err != nil {
			return nil, err
		}
		return handler(context.WithValue(ctx, roleKey{}, role), req)
	}
}

// StreamAuthorizer is UnaryAuthorizer for streaming calls.
func StreamAuthorizer(allowed MethodRoles) grpc.StreamServerInterceptor {
	allowed = cloneRoles(allowed)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		role, err := Authorize(ss.Context(), info.FullMethod, allowed)
		if err != nil {
			return err
		}
		return handler(srv, &roleStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), roleKey{}, role)})
	}
}

type roleStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *roleStream) Context() context.Context { return s.ctx }

// cloneRoles copies the table so later changes by the caller do not
// change what the interceptor allows.
func cloneRoles(m MethodRoles) MethodRoles {
	out := make(MethodRoles, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
