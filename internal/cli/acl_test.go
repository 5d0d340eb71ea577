package cli

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// aclFake answers the ACL RPCs (and ListReleases) and records the token each
// call carried.
type aclFake struct {
	rollwavev1.UnimplementedOperatorServiceServer

	mu      sync.Mutex
	tokens  []string // "authorization" metadata per call, in order
	create  *rollwavev1.ACLTokenCreateRequest
	deleted string
	err     error
}

func (f *aclFake) note(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, strings.Join(md.Get("authorization"), ","))
	return f.err
}

func (f *aclFake) lastToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) == 0 {
		return "<no call>"
	}
	return f.tokens[len(f.tokens)-1]
}

var fakeToken = &rollwavev1.ACLTokenInfo{AccessorId: "acc-1", Name: "bootstrap", Role: "admin", CreatedUnixNano: nanos(testNow), CreatedBy: "bootstrap"}

func (f *aclFake) ACLBootstrap(ctx context.Context, req *rollwavev1.ACLBootstrapRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
	if err := f.note(ctx); err != nil {
		return nil, err
	}
	return &rollwavev1.ACLTokenSecretResponse{Token: fakeToken, Secret: "s3cr3t-" + req.GetName()}, nil
}

func (f *aclFake) ACLTokenCreate(ctx context.Context, req *rollwavev1.ACLTokenCreateRequest) (*rollwavev1.ACLTokenSecretResponse, error) {
	if err := f.note(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.create = req
	f.mu.Unlock()
	return &rollwavev1.ACLTokenSecretResponse{Token: &rollwavev1.ACLTokenInfo{AccessorId: "acc-2", Name: req.GetName(), Role: req.GetRole(), CreatedBy: "bootstrap"},
		Secret: "new-secret"}, nil
}

func (f *aclFake) ACLTokenList(ctx context.Context, _ *rollwavev1.ACLTokenListRequest) (*rollwavev1.ACLTokenListResponse, error) {
	if err := f.note(ctx); err != nil {
		return nil, err
	}
	return &rollwavev1.ACLTokenListResponse{Tokens: []*rollwavev1.ACLTokenInfo{fakeToken,
		{AccessorId: "acc-2", Name: "ci", Role: "read", CreatedUnixNano: nanos(testNow), CreatedBy: "bootstrap"}}}, nil
}

func (f *aclFake) ACLTokenDelete(ctx context.Context, req *rollwavev1.ACLTokenDeleteRequest) (*rollwavev1.ACLTokenDeleteResponse, error) {
	if err := f.note(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.deleted = req.GetAccessorId()
	f.mu.Unlock()
	return &rollwavev1.ACLTokenDeleteResponse{}, nil
}

func (f *aclFake) ListReleases(ctx context.Context, _ *rollwavev1.ListReleasesRequest) (*rollwavev1.ListReleasesResponse, error) {
	return &rollwavev1.ListReleasesResponse{}, f.note(ctx)
}

func startACLFake(t *testing.T, f *aclFake) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rollwavev1.RegisterOperatorServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestACLBootstrapPrintsSecretOnce(t *testing.T) {
	t.Setenv(EnvToken, "")
	f := &aclFake{}
	addr := startACLFake(t, f)
	r := runAt(t, addr, "acl", "bootstrap").expect(t, ExitOK)
	for _, want := range []string{"ACL bootstrap complete.", "acc-1", "s3cr3t-bootstrap", "admin"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "shown only once") {
		t.Errorf("no warning on stderr: %s", r.stderr)
	}
	if f.lastToken() != "" {
		t.Errorf("bootstrap sent a token: %q", f.lastToken())
	}
	r = runAt(t, addr, "acl", "bootstrap", "-name", "root", "-json").expect(t, ExitOK)
	if !strings.Contains(r.stdout, `"secret": "s3cr3t-root"`) || !strings.Contains(r.stdout, `"accessor_id": "acc-1"`) {
		t.Errorf("json: %s", r.stdout)
	}
}

func TestACLTokenCommands(t *testing.T) {
	t.Setenv(EnvToken, "")
	f := &aclFake{}
	addr := startACLFake(t, f)

	r := runAt(t, addr, "-token", "admin-secret", "acl", "token", "create", "-name", "ci", "-role", "read").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "new-secret") || !strings.Contains(r.stdout, "acc-2") {
		t.Errorf("create output:\n%s", r.stdout)
	}
	if f.create.GetName() != "ci" || f.create.GetRole() != "read" {
		t.Errorf("create request = %v", f.create)
	}
	if got := f.lastToken(); got != "Bearer admin-secret" {
		t.Errorf("authorization = %q, want the -token secret", got)
	}

	// The environment variable works too; -token wins over it.
	t.Setenv(EnvToken, "env-secret")
	r = runAt(t, addr, "acl", "token", "list").expect(t, ExitOK)
	if f.lastToken() != "Bearer env-secret" {
		t.Errorf("authorization = %q, want %s", f.lastToken(), EnvToken)
	}
	for _, want := range []string{"ACCESSOR", "acc-1", "bootstrap", "admin", "ci", "read"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(strings.ToLower(r.stdout), "secret") {
		t.Errorf("list shows secrets:\n%s", r.stdout)
	}
	runAt(t, addr, "-token", "flag-secret", "release", "list").expect(t, ExitOK)
	if f.lastToken() != "Bearer flag-secret" {
		t.Errorf("authorization = %q, want the -token flag over the env", f.lastToken())
	}
	r = runAt(t, addr, "acl", "token", "list", "-json").expect(t, ExitOK)
	if !strings.Contains(r.stdout, `"accessor_id": "acc-2"`) || strings.Contains(r.stdout, "secret") {
		t.Errorf("json list:\n%s", r.stdout)
	}

	r = runAt(t, addr, "acl", "token", "delete", "acc-2").expect(t, ExitOK)
	if f.deleted != "acc-2" || !strings.Contains(r.stdout, "Deleted token acc-2") {
		t.Errorf("delete: %q, %s", f.deleted, r.stdout)
	}

	// Usage errors exit 2 without calling the server.
	calls := len(f.tokens)
	runAt(t, addr, "acl", "token", "create", "-name", "x", "-role", "root").expect(t, ExitUsage)
	runAt(t, addr, "acl", "token", "create", "-role", "read").expect(t, ExitUsage)
	runAt(t, addr, "acl", "token", "delete").expect(t, ExitUsage)
	runAt(t, addr, "acl", "token", "bogus").expect(t, ExitUsage)
	if len(f.tokens) != calls {
		t.Errorf("usage errors reached the server")
	}

	// The server's refusal exits 1 with its message.
	f.err = status.Error(codes.PermissionDenied, `token "ci" has role read; ACLTokenCreate needs role admin`)
	r = runAt(t, addr, "acl", "token", "create", "-name", "y", "-role", "admin").expect(t, ExitDenied)
	if !strings.Contains(r.stderr, "needs role admin") {
		t.Errorf("stderr: %s", r.stderr)
	}
}
