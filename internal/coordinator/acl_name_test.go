package coordinator_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSecurityTokenNameValidation (issue 11 item 11c): token names took
// control characters and any length, straight from the RPC: a newline or an
// escape sequence in a name is replayed into every log line, event and
// listing that shows the actor. The server refuses them (the CLI's own
// check is not enough), and nothing is written to raft.
func TestSecurityTokenNameValidation(t *testing.T) {
	c := coordtest.NewCluster(t, 1, coordtest.WithACLs())
	leader := c.Leader(30 * time.Second)
	cl := c.Client(leader)
	bg := ctx(t)

	before := leader.Raft().LastIndex()
	_, err := cl.ACLBootstrap(bg, &rollwavev1.ACLBootstrapRequest{Name: "root\nlevel=INFO msg=forged"})
	wantCode(t, "bootstrap with a newline in the name", err, codes.InvalidArgument, "non-printable")
	if after := leader.Raft().LastIndex(); after != before {
		t.Fatalf("a refused bootstrap wrote to raft (index %d -> %d)", before, after)
	}
	boot, err := cl.ACLBootstrap(bg, &rollwavev1.ACLBootstrapRequest{Name: "ops-bootstrap"})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	admin := coordtest.WithToken(bg, boot.GetSecret())

	bad := []struct{ name, why string }{
		{"alice\x1b[31m", "non-printable"},        // terminal escape
		{"bob\r\nmallory", "non-printable"},       // forged line
		{"eve\u202egnp.exe", "non-printable"},     // bidi override
		{"nul\x00", "non-printable"},              // NUL
		{strings.Repeat("a", 129), "at most 128"}, // too long
		{strings.Repeat("é", 129), "at most 128"}, // characters, not bytes
		{"   ", "needs a name"},                   // blank
	}
	before = leader.Raft().LastIndex()
	for _, b := range bad {
		_, err := cl.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: b.name, Role: raftfsm.RoleRead})
		wantCode(t, "create "+strings.ToValidUTF8(b.name, "?"), err, codes.InvalidArgument, b.why)
	}
	if after := leader.Raft().LastIndex(); after != before {
		t.Fatalf("refused creates wrote to raft (index %d -> %d)", before, after)
	}
	// At the limit, and with spaces and non-ASCII letters inside: accepted.
	for _, ok := range []string{strings.Repeat("é", 128), "CI deploy (team ü)"} {
		if _, err := cl.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: ok, Role: raftfsm.RoleRead}); err != nil {
			t.Errorf("create %q: %v", ok, err)
		}
	}
}
