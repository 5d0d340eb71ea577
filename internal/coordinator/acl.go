package coordinator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Operator ACLs. With Config.ACLEnabled every OperatorService call but
// Status (and ACLBootstrap, before the bootstrap) carries a token secret in
// its metadata; the interceptor hashes it, looks the token up in the local
// replica and checks the token's role against aclMethodRoles. The token's
// name becomes the actor of whatever the call writes.

// Metadata keys that carry a token: "authorization: Bearer <secret>" or
// "x-rollwave-token: <secret>".
const (
	aclAuthorizationKey = "authorization"
	aclTokenKey         = "x-rollwave-token"
)

const operatorServicePrefix = "/rollwave.v1.OperatorService/"

// aclOpen lists the methods that need no token: Status (servers call each
// other's Status while forming a cluster; it tells only the raft state)
// and ACLBootstrap (it makes the first token; the FSM accepts it once).
var aclOpen = map[string]bool{"Status": true, "ACLBootstrap": true}

// aclMethodRoles gives the least role each OperatorService method needs.
// A method missing here needs admin: new RPCs are closed until listed.
var aclMethodRoles = map[string]string{
	"Members":      raftfsm.RoleRead,
	"RaftPeers":    raftfsm.RoleRead,
	"ListHosts":    raftfsm.RoleRead,
	"ListCells":    raftfsm.RoleRead,
	"GetRelease":   raftfsm.RoleRead,
	"ListReleases": raftfsm.RoleRead,
	"ListEvents":   raftfsm.RoleRead,
	"WatchRelease": raftfsm.RoleRead,
	"PlanRelease":  raftfsm.RoleRead,
	"ListFreezes":  raftfsm.RoleRead,
	"Report":       raftfsm.RoleRead,
	"HostLogs":     raftfsm.RoleRead,
	"ACLTokenList": raftfsm.RoleRead, // non-admins see only their own token
	"NotifyStatus": raftfsm.RoleRead,
	"GetChain":     raftfsm.RoleRead,
	"ListChains":   raftfsm.RoleRead,

	"SubmitRelease":   raftfsm.RoleDeploy,
	"PauseRelease":    raftfsm.RoleDeploy,
	"ResumeRelease":   raftfsm.RoleDeploy,
	"ApproveRelease":  raftfsm.RoleDeploy,
	"AbortRelease":    raftfsm.RoleDeploy,
	"RollbackRelease": raftfsm.RoleDeploy,
	"PromoteRelease":  raftfsm.RoleDeploy,
	"AckRelease":      raftfsm.RoleDeploy,
	"ConvergeRelease": raftfsm.RoleDeploy,
	"SubmitChain":     raftfsm.RoleDeploy,
	"RollbackChain":   raftfsm.RoleDeploy,
	"SetCell":         raftfsm.RoleDeploy,
	"DeleteCell":      raftfsm.RoleDeploy,
	"AddFreeze":       raftfsm.RoleDeploy,
	"RemoveFreeze":    raftfsm.RoleDeploy,

	"RemovePeer":      raftfsm.RoleAdmin,
	"SnapshotSave":    raftfsm.RoleAdmin,
	"SnapshotRestore": raftfsm.RoleAdmin,
	"SetGlobalFreeze": raftfsm.RoleAdmin,
	"OverrideFreeze":  raftfsm.RoleAdmin,
	"ACLTokenCreate":  raftfsm.RoleAdmin,
	"ACLTokenDelete":  raftfsm.RoleAdmin,
}

// roleRank orders roles; an unknown role ranks below read.
func roleRank(role string) int { return slices.Index(raftfsm.ACLRoles, role) }

func methodRole(method string) string {
	if r, ok := aclMethodRoles[method]; ok {
		return r
	}
	return raftfsm.RoleAdmin
}

type aclTokenCtxKey struct{}

// aclTokenFrom returns the token the interceptor resolved for this call,
// or nil (ACLs off, or an open method).
func aclTokenFrom(ctx context.Context) *rollwavev1.ACLToken {
	t, _ := ctx.Value(aclTokenCtxKey{}).(*rollwavev1.ACLToken)
	return t
}

// actorOf is who a write is recorded as: the calling token's name when ACLs
// resolved one (what the client claims is ignored), else the client's
// claim.
func actorOf(ctx context.Context, claimed string) string {
	if t := aclTokenFrom(ctx); t != nil {
		return t.GetName()
	}
	return claimed
}

// tokenFromMetadata returns the secret a caller sent, or "".
func tokenFromMetadata(md metadata.MD) string {
	for _, v := range md.Get(aclAuthorizationKey) {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
	}
	for _, v := range md.Get(aclTokenKey) {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// hashSecret is what raft stores for a secret: lower-case hex sha256.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// authorize checks the call's token against the method's role and returns
// the context handlers run with.
func (s *Server) authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	method, ok := strings.CutPrefix(fullMethod, operatorServicePrefix)
	if !ok || aclOpen[method] {
		return ctx, nil
	}
	if done, _ := s.fsm.State().ACLBootstrapped(); !done {
		if why := s.catchingUp(); why != "" {
			return nil, status.Errorf(codes.Unavailable,
				"ACLs are enabled and this server cannot tell yet whether they were bootstrapped: %s; retry in a few seconds (%s refused)", why, method)
		}
		return nil, errorf(raftfsm.ErrConflict,
			"ACLs are enabled but not bootstrapped yet: run 'rollwave acl bootstrap' to create the first admin token (%s refused)", method)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	secret := tokenFromMetadata(md)
	if secret == "" {
		return nil, status.Errorf(codes.Unauthenticated, "%s needs an ACL token: pass -token or set ROLLWAVE_TOKEN", method)
	}
	tok := s.fsm.State().ResolveACLToken(hashSecret(secret))
	if tok == nil {
		return nil, status.Error(codes.Unauthenticated, "ACL token not found: it is wrong or was deleted")
	}
	need := methodRole(method)
	if roleRank(tok.GetRole()) < roleRank(need) {
		return nil, errorf(raftfsm.ErrPermissionDenied, "token %q has role %s; %s needs role %s",
			tok.GetName(), tok.GetRole(), method, need)
	}
	return context.WithValue(ctx, aclTokenCtxKey{}, tok), nil
}

// catchingUp says why this server's replica cannot be trusted to be
// current, or "": it knows no leader (starting, electing, cut off), or it
// has not applied the log it had on disk when it started. A restarted
// follower applies its log only once a leader tells it what is
// committed, so for its first seconds its state is older than the
// cluster's: without this, it would tell operators that ACLs are not
// bootstrapped.
func (s *Server) catchingUp() string {
	if _, lid := s.raft.LeaderWithID(); lid == "" {
		return "it knows no raft leader yet (it is starting, an election is under way, or it cannot reach the other servers)"
	}
	if applied := s.raft.AppliedIndex(); applied < s.startLastIndex {
		return fmt.Sprintf("it is catching up with the leader after a restart (applied index %d of %d)", applied, s.startLastIndex)
	}
	return ""
}

func (s *Server) aclUnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		// Outside the error interceptor (errkind.go): map the kind here.
		return nil, toStatus(err)
	}
	return handler(ctx, req)
}

func (s *Server) aclStreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return toStatus(err)
	}
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a ServerStream with the context the interceptor made.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

// forwardToken copies the caller's token into the outgoing context of a
// forwarded call: the leader checks it again.
func forwardToken(in, out context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(in)
	if !ok {
		return out
	}
	if secret := tokenFromMetadata(md); secret != "" {
		out = metadata.AppendToOutgoingContext(out, aclAuthorizationKey, "Bearer "+secret)
	}
	return out
}

// newSecretToken makes a token's public accessor id and its secret. Both
// are random; only the secret's hash goes into raft.
func newSecretToken() (accessor, secret string, err error) {
	var a [16]byte
	var b [32]byte
	if _, err := rand.Read(a[:]); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	h := hex.EncodeToString(a[:])
	accessor = fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	return accessor, hex.EncodeToString(b[:]), nil
}

func tokenInfo(t *rollwavev1.ACLToken) *rollwavev1.ACLTokenInfo {
	return &rollwavev1.ACLTokenInfo{
		AccessorId: t.GetAccessorId(), Name: t.GetName(), Role: t.GetRole(),
		CreatedUnixNano: t.GetCreatedUnixNano(), CreatedBy: t.GetCreatedBy(),
	}
}

func (s *Server) requireACLs() error {
	if !s.cfg.ACLEnabled {
		return errorf(raftfsm.ErrConflict, "ACLs are not enabled on this server; start every server with acl { enabled = true } (or -acl-enabled)")
	}
	return nil
}

func (o *operatorService) ACLBootstrap(ctx context.Context, req *rollwavev1.ACLBootstrapRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
	if err := o.s.requireACLs(); err != nil {
		return nil, err
	}
	if done, at := o.s.fsm.State().ACLBootstrapped(); done {
		return nil, errorf(raftfsm.ErrConflict, "ACL bootstrap already done (at %s); ask an admin token holder for a token (resetting needs a snapshot restore, see docs/security.md)",
			timeRFC3339(at))
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.ACLBootstrap,
		func(ctx context.Context, req *rollwavev1.ACLBootstrapRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
			name := strings.TrimSpace(req.GetName())
			if name == "" {
				name = "bootstrap"
			}
			if err := raftfsm.CheckACLTokenName(name); err != nil {
				return nil, withKind(raftfsm.ErrInvalid, err)
			}
			accessor, secret, err := newSecretToken()
			if err != nil {
				return nil, status.Errorf(codes.Internal, "make token: %v", err)
			}
			now := nowUnixNano()
			tok := &rollwavev1.ACLToken{AccessorId: accessor, SecretHash: hashSecret(secret), Name: name,
				Role: raftfsm.RoleAdmin, CreatedUnixNano: now, CreatedBy: name}
			if err := o.s.applyErr(raftfsm.ACLBootstrap, &rollwavev1.ACLBootstrapCommand{TimeUnixNano: now, Token: tok}); err != nil {
				return nil, err
			}
			o.s.log.Warn("ACLs bootstrapped", "accessor", accessor, "name", name)
			return &rollwavev1.ACLTokenSecretResponse{Token: tokenInfo(tok), Secret: secret}, nil
		})
}

func (o *operatorService) ACLTokenCreate(ctx context.Context, req *rollwavev1.ACLTokenCreateRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
	if err := o.s.requireACLs(); err != nil {
		return nil, err
	}
	if err := raftfsm.CheckACLTokenName(strings.TrimSpace(req.GetName())); err != nil {
		return nil, withKind(raftfsm.ErrInvalid, err)
	}
	if roleRank(req.GetRole()) < 0 {
		return nil, errorf(raftfsm.ErrInvalid, "role %q must be one of %s", req.GetRole(), strings.Join(raftfsm.ACLRoles, ", "))
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.ACLTokenCreate,
		func(ctx context.Context, req *rollwavev1.ACLTokenCreateRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
			accessor, secret, err := newSecretToken()
			if err != nil {
				return nil, status.Errorf(codes.Internal, "make token: %v", err)
			}
			now := nowUnixNano()
			actor := actorOf(ctx, "")
			tok := &rollwavev1.ACLToken{AccessorId: accessor, SecretHash: hashSecret(secret), Name: strings.TrimSpace(req.GetName()),
				Role: req.GetRole(), CreatedUnixNano: now, CreatedBy: actor}
			if err := o.s.applyErr(raftfsm.UpsertACLToken, &rollwavev1.UpsertACLTokenCommand{TimeUnixNano: now, Token: tok, Actor: actor}); err != nil {
				return nil, err
			}
			return &rollwavev1.ACLTokenSecretResponse{Token: tokenInfo(tok), Secret: secret}, nil
		})
}

// ACLTokenList answers from the local replica. Admins see every token,
// anyone else only the token they called with.
func (o *operatorService) ACLTokenList(ctx context.Context, _ *rollwavev1.ACLTokenListRequest) (*rollwavev1.ACLTokenListResponse, error) {
	if err := o.s.requireACLs(); err != nil {
		return nil, err
	}
	caller := aclTokenFrom(ctx)
	var out []*rollwavev1.ACLTokenInfo
	for _, t := range o.s.fsm.State().ACLTokens() {
		if caller.GetRole() == raftfsm.RoleAdmin || t.GetAccessorId() == caller.GetAccessorId() {
			out = append(out, tokenInfo(t))
		}
	}
	return &rollwavev1.ACLTokenListResponse{Tokens: out}, nil
}

func (o *operatorService) ACLTokenDelete(ctx context.Context, req *rollwavev1.ACLTokenDeleteRequest) (*rollwavev1.ACLTokenDeleteResponse, error) {
	if err := o.s.requireACLs(); err != nil {
		return nil, err
	}
	if req.GetAccessorId() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "delete needs a token's accessor id; see 'rollwave acl token list'")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.ACLTokenDelete,
		func(ctx context.Context, req *rollwavev1.ACLTokenDeleteRequest) (*rollwavev1.ACLTokenDeleteResponse, error) {
			if o.s.fsm.State().ACLToken(req.GetAccessorId()) == nil {
				return nil, errorf(raftfsm.ErrNotFound, "no token with accessor %q; see 'rollwave acl token list'", req.GetAccessorId())
			}
			if err := o.s.applyErr(raftfsm.DeleteACLToken, &rollwavev1.DeleteACLTokenCommand{
				TimeUnixNano: nowUnixNano(), AccessorId: req.GetAccessorId(), Actor: actorOf(ctx, ""),
			}); err != nil {
				return nil, err
			}
			o.s.log.Info("ACL token deleted", "accessor", req.GetAccessorId(), "by", actorOf(ctx, ""))
			return &rollwavev1.ACLTokenDeleteResponse{}, nil
		})
}

func nowUnixNano() int64 { return time.Now().UnixNano() }

func timeRFC3339(unixNano int64) string { return time.Unix(0, unixNano).UTC().Format(time.RFC3339) }
