package coordinator_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// wantCode fails unless err is a status with code c whose message contains
// every one of msgs.
func wantCode(t *testing.T, what string, err error, c codes.Code, msgs ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != c {
		t.Fatalf("%s: got %v, want %v", what, err, c)
	}
	for _, m := range msgs {
		if !strings.Contains(st.Message(), m) {
			t.Errorf("%s: message %q does not contain %q", what, st.Message(), m)
		}
	}
}

func TestACLTokensAndRoles(t *testing.T) {
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	leader := c.Leader(30 * time.Second)
	follower := c.Followers()[0]
	lc, fc := c.Client(leader), c.Client(follower)
	bg := ctx(t)

	// Before the bootstrap only Status and ACLBootstrap are served.
	if _, err := fc.Status(bg, &rollwavev1.StatusRequest{}); err != nil {
		t.Fatalf("status without a token: %v", err)
	}
	_, err := fc.ListReleases(bg, &rollwavev1.ListReleasesRequest{})
	wantCode(t, "list before bootstrap", err, codes.FailedPrecondition, "rollwave acl bootstrap")

	// Bootstrap through a follower (forwarded to the leader), once.
	boot, err := fc.ACLBootstrap(bg, &rollwavev1.ACLBootstrapRequest{})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if boot.GetSecret() == "" || boot.GetToken().GetRole() != raftfsm.RoleAdmin || boot.GetToken().GetName() != "bootstrap" {
		t.Fatalf("bootstrap answer = %v", boot)
	}
	_, err = lc.ACLBootstrap(bg, &rollwavev1.ACLBootstrapRequest{})
	wantCode(t, "second bootstrap", err, codes.FailedPrecondition, "bootstrap already done")
	for _, s := range c.Running() {
		for _, tok := range s.FSM().State().ACLTokens() {
			if strings.Contains(tok.GetSecretHash(), boot.GetSecret()) || tok.GetSecretHash() == boot.GetSecret() {
				t.Fatal("raft stores the secret")
			}
		}
	}
	admin := coordtest.WithToken(bg, boot.GetSecret())

	// The admin token makes a read and a deploy token (through a follower).
	mk := func(name, role string) *rollwavev1.ACLTokenSecretResponse {
		t.Helper()
		resp, err := fc.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: name, Role: role})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if resp.GetToken().GetCreatedBy() != "bootstrap" || resp.GetToken().GetRole() != role {
			t.Fatalf("created %v", resp.GetToken())
		}
		return resp
	}
	reader, deployer := mk("ci-reader", raftfsm.RoleRead), mk("deployer", raftfsm.RoleDeploy)
	readCtx, deployCtx := coordtest.WithToken(bg, reader.GetSecret()), coordtest.WithToken(bg, deployer.GetSecret())
	_, err = fc.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: "x", Role: "root"})
	wantCode(t, "bad role", err, codes.InvalidArgument, "read, deploy, admin")
	_, err = fc.ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: "deployer", Role: raftfsm.RoleRead})
	wantCode(t, "duplicate name", err, codes.AlreadyExists, `named "deployer"`)

	// No token, an unknown token: Unauthenticated, on any server.
	for _, cl := range []rollwavev1.OperatorServiceClient{lc, fc} {
		_, err = cl.ListReleases(bg, &rollwavev1.ListReleasesRequest{})
		wantCode(t, "no token", err, codes.Unauthenticated, "ListReleases needs an ACL token")
		_, err = cl.ListReleases(coordtest.WithToken(bg, "not-a-token"), &rollwavev1.ListReleasesRequest{})
		wantCode(t, "unknown token", err, codes.Unauthenticated, "not found")
	}

	// read: lists, but cannot start a release or manage tokens.
	if _, err := fc.ListReleases(readCtx, &rollwavev1.ListReleasesRequest{}); err != nil {
		t.Fatalf("read token lists releases: %v", err)
	}
	start := &rollwavev1.SubmitReleaseRequest{SourceName: "api.hcl", Source: specSource("api-1", "api"), Start: true, Actor: "mallory"}
	for _, cl := range []rollwavev1.OperatorServiceClient{lc, fc} {
		_, err = cl.SubmitRelease(readCtx, start)
		wantCode(t, "read token starts a release", err, codes.PermissionDenied, `"ci-reader" has role read`, "SubmitRelease needs role deploy")
	}
	_, err = fc.ACLTokenCreate(readCtx, &rollwavev1.ACLTokenCreateRequest{Name: "y", Role: raftfsm.RoleAdmin})
	wantCode(t, "read token creates a token", err, codes.PermissionDenied, "ACLTokenCreate needs role admin")
	_, err = fc.ResumeRelease(readCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1"})
	wantCode(t, "read token resumes a release", err, codes.PermissionDenied, "ResumeRelease needs role deploy")
	_, err = fc.SetGlobalFreeze(deployCtx, &rollwavev1.SetGlobalFreezeRequest{On: true, Reason: "x"})
	wantCode(t, "deploy token sets the global freeze", err, codes.PermissionDenied, "needs role admin")

	// deploy: submits a release and acts on it through a follower; the
	// token's name is the actor, whatever the client claims. With no
	// agents in this test the start is refused (no host to plan for) by
	// the handler, past the ACL check; the abort goes through.
	start.Start = false
	sub, err := fc.SubmitRelease(deployCtx, start)
	if err != nil {
		t.Fatalf("deploy token submits a release: %v", err)
	}
	if sub.GetRelease().GetCreatedBy() != "deployer" {
		t.Errorf("created by %q, want deployer", sub.GetRelease().GetCreatedBy())
	}
	// A freeze override needs admin; the admin token's name is its actor.
	_, err = fc.OverrideFreeze(deployCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1", Reason: "hotfix", Actor: "mallory"})
	wantCode(t, "deploy token overrides freezes", err, codes.PermissionDenied, "OverrideFreeze needs role admin")
	ov, err := fc.OverrideFreeze(admin, &rollwavev1.ReleaseActionRequest{Id: "api-1", Reason: "hotfix", Actor: "mallory"})
	if err != nil {
		t.Fatalf("admin overrides freezes: %v", err)
	}
	if o := ov.GetRelease().GetFreezeOverride(); o.GetActor() != "bootstrap" || o.GetReason() != "hotfix" {
		t.Errorf("override = %v, want actor bootstrap", o)
	}
	_, err = fc.ResumeRelease(deployCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1", Actor: "mallory"})
	wantCode(t, "deploy token starts a release with no host", err, codes.FailedPrecondition, "no live host matches its target")
	res, err := fc.AbortRelease(deployCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1", Actor: "mallory"})
	if err != nil {
		t.Fatalf("deploy token aborts a release: %v", err)
	}
	if res.GetRelease().GetState() != rollwavev1.ReleaseState_RELEASE_STATE_ABORTED {
		t.Errorf("release %s after abort", res.GetRelease().GetState())
	}
	// ack needs deploy; report is a read. An aborted release that never
	// failed has nothing to acknowledge.
	_, err = fc.AckRelease(readCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1"})
	wantCode(t, "read token acks a release", err, codes.PermissionDenied, "AckRelease needs role deploy")
	_, err = fc.AckRelease(deployCtx, &rollwavev1.ReleaseActionRequest{Id: "api-1", Actor: "mallory"})
	wantCode(t, "ack of a release that never failed", err, codes.FailedPrecondition, `release "api-1" has not failed`)
	if rep, err := fc.Report(readCtx, &rollwavev1.ReportRequest{App: "api"}); err != nil || len(rep.GetApps()) != 1 || rep.GetApps()[0].GetChanges() != 0 {
		t.Fatalf("read token's report = %v, %v", rep, err)
	}
	ev, err := fc.ListEvents(readCtx, &rollwavev1.ListEventsRequest{ReleaseId: "api-1"})
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]bool{}
	for _, e := range ev.GetEvents() {
		if e.GetActor() != "" {
			actors[e.GetActor()] = true
		}
	}
	if actors["mallory"] || !actors["deployer"] {
		t.Errorf("event actors = %v, want deployer and never mallory", actors)
	}

	// Listing: admins see all tokens, others only their own; never secrets.
	all, err := fc.ACLTokenList(admin, &rollwavev1.ACLTokenListRequest{})
	if err != nil || len(all.GetTokens()) != 3 {
		t.Fatalf("admin list = %v, %v", all, err)
	}
	own, err := fc.ACLTokenList(readCtx, &rollwavev1.ACLTokenListRequest{})
	if err != nil || len(own.GetTokens()) != 1 || own.GetTokens()[0].GetName() != "ci-reader" {
		t.Fatalf("reader list = %v, %v", own, err)
	}

	// A deleted token stops working everywhere.
	if _, err := fc.ACLTokenDelete(admin, &rollwavev1.ACLTokenDeleteRequest{AccessorId: reader.GetToken().GetAccessorId()}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = fc.ListReleases(readCtx, &rollwavev1.ListReleasesRequest{})
	wantCode(t, "deleted token", err, codes.Unauthenticated)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, s := range c.Running() {
			if s.FSM().State().ACLToken(reader.GetToken().GetAccessorId()) != nil {
				return false, s.NodeID() + " still has the deleted token"
			}
		}
		return true, ""
	})
	_, err = lc.ListReleases(readCtx, &rollwavev1.ListReleasesRequest{})
	wantCode(t, "deleted token on the leader", err, codes.Unauthenticated)
	_, err = fc.ACLTokenDelete(admin, &rollwavev1.ACLTokenDeleteRequest{AccessorId: boot.GetToken().GetAccessorId()})
	wantCode(t, "delete the last admin", err, codes.FailedPrecondition, "last admin token")

	// The audit log names who managed tokens.
	all2, err := lc.ListEvents(admin, &rollwavev1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range all2.GetEvents() {
		kinds[e.GetKind()] = e.GetActor()
	}
	if kinds["acl.bootstrapped"] != "bootstrap" || kinds["acl.token_created"] != "bootstrap" || kinds["acl.token_deleted"] != "bootstrap" {
		t.Errorf("acl events = %v", kinds)
	}
}

func TestACLRPCsNeedACLsEnabled(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	_, err := c.Client(c.Leader(10*time.Second)).ACLBootstrap(ctx(t), &rollwavev1.ACLBootstrapRequest{})
	wantCode(t, "bootstrap without ACLs", err, codes.FailedPrecondition, "ACLs are not enabled")
}
