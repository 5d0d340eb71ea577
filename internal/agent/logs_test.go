package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// runCLI runs the real rollwave CLI and returns its exit code and output.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(cli.NewRootCommand("test"), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHostLogs: three coordinators with ACLs and one agent (process
// driver) running the demo app. `rollwave logs` through a follower shows
// what the app printed at start; a follow receives the lines the app
// prints later and stops the agent's side when the client goes away; bad
// requests are refused with what was wrong; a read token suffices and no
// token is refused.
func TestHostLogs(t *testing.T) {
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	l := c.Leader(30 * time.Second)
	boot, err := c.Client(l).ACLBootstrap(ctx(t), &rollwavev1.ACLBootstrapRequest{Name: "root"})
	if err != nil {
		t.Fatal(err)
	}
	admin := coordtest.WithToken(ctx(t), boot.GetSecret())
	reader, err := c.Client(l).ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: "reader", Role: raftfsm.RoleRead})
	if err != nil {
		t.Fatal(err)
	}
	a := agenttest.Start(t, "h1", "a", agenttest.Options{Join: l.GossipAddr()})
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		l := c.Leader(30 * time.Second)
		return l.AgentConnected("h1") && l.FSM().State().Host("h1") != nil, "agent h1 not registered"
	})

	ports := testutil.FreePorts(t, 3)
	traffic := fmt.Sprintf("127.0.0.1:%d", ports[2])
	art, err := demoapp.PackageConfig(demoBin, t.TempDir(), "1.0.0", map[string]string{"healthy": "yes", "log_requests": "yes"})
	if err != nil {
		t.Fatal(err)
	}
	src := demoapp.Spec("demo-1", "1.0.0", art, ports[0], ports[1], ports[2], "1m")
	if _, err := c.Client(l).SubmitRelease(admin, &rollwavev1.SubmitReleaseRequest{
		SourceName: "demo-1.hcl", Source: []byte(src), Start: true, Actor: "test",
	}); err != nil {
		t.Fatal(err)
	}
	// Retried: a busy machine may move leadership meanwhile.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		_, err := c.Leader(10*time.Second).AssignHosts("demo-1", 0, []string{"h1"})
		return err == nil, fmt.Sprintf("assign h1: %v", err)
	})
	waitServes(t, traffic, "1.0.0", 20*time.Second)
	// The leader learns the app from the agent's slot facts.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		h := c.Leader(30 * time.Second).FSM().State().Host("h1")
		return len(h.GetApps()) == 1 && h.GetApps()[0].GetActive() == rollwavev1.Slot_SLOT_BLUE, fmt.Sprintf("h1 facts %v", h.GetApps())
	})

	follower := c.Followers()[0].GRPCAddr()
	base := []string{"-address", follower, "-token", reader.GetSecret()}
	// The last lines, through a follower (forwarded to the leader, which
	// holds the session), with a read token.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		code, out, errOut := runCLI(append([]string{"logs", "h1", "demo", "-n", "5"}, base...)...)
		return code == 0 && strings.Contains(out, "demo-app 1.0.0 listening on") && strings.Contains(errOut, "slot blue (version 1.0.0)"),
			fmt.Sprintf("exit %d, stdout %q, stderr %q", code, out, errOut)
	})
	code, out, errOut := runCLI(append([]string{"logs", "h1", "demo", "-json"}, base...)...)
	if code != 0 {
		t.Fatalf("-json: exit %d: %s", code, errOut)
	}
	var line struct {
		Host, App, Slot, Version, Message string
		Notice                            bool
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &line); err != nil {
		t.Fatalf("-json line %q: %v", out, err)
	}
	if line.Host != "h1" || line.App != "demo" || line.Slot != "blue" || line.Version != "1.0.0" || line.Message == "" {
		t.Fatalf("-json line %+v", line)
	}

	// Refusals, each naming what was wrong, with its exit code.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"logs", "h9", "demo"}, cli.ExitNotFound, `no host "h9"`},
		{[]string{"logs", "h1", "nope"}, cli.ExitNotFound, `app "nope" is not on host h1 (it has apps demo)`},
		{[]string{"logs", "h1", "demo", "-slot", "green"}, cli.ExitNotFound, "green slot of app \"demo\""},
		{[]string{"logs", "h1", "demo", "-n", "20000"}, cli.ExitUsage, "invalid -n 20000: want 1 to 10000"},
		{[]string{"logs", "h1", "demo", "-slot", "purple"}, cli.ExitUsage, `invalid -slot "purple"`},
		{[]string{"logs", "h1"}, cli.ExitUsage, "needs 2 argument(s): HOST APP"},
	} {
		code, _, errOut := runCLI(append(tc.args, base...)...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	// ACLs on: no token, no logs.
	if code, _, errOut := runCLI("logs", "h1", "demo", "-address", follower); code != cli.ExitDenied || !strings.Contains(errOut, "HostLogs needs an ACL token") {
		t.Fatalf("without a token: exit %d, %q; want %d", code, errOut, cli.ExitDenied)
	}

	// Follow: a request to the app prints a line, which arrives.
	fctx, cancel := contextWithCancel(t)
	stream, err := c.Client(c.Followers()[0]).HostLogs(coordtest.WithToken(fctx, reader.GetSecret()),
		&rollwavev1.HostLogsRequest{Host: "h1", App: "demo", Lines: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetSlot() != rollwavev1.Slot_SLOT_BLUE {
		t.Fatalf("first message %v, %v; want one naming slot blue", first, err)
	}
	if _, err := get(traffic + "/logs-test-marker"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for found := false; !found; {
		if time.Now().After(deadline) {
			t.Fatal("the app's new line did not arrive within 15s")
		}
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
		for _, ln := range m.GetLines() {
			found = found || strings.Contains(ln.GetMessage(), "demo-app 1.0.0: GET /logs-test-marker")
		}
	}
	if n := a.ActiveLogStreams(); n != 1 {
		t.Fatalf("agent serves %d log streams during the follow, want 1", n)
	}
	// The client goes away: the agent's side ends too.
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled && err != io.EOF {
		t.Logf("after cancel: %v", err)
	}
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		n := a.ActiveLogStreams()
		return n == 0, fmt.Sprintf("agent still serves %d log streams after the client left", n)
	})

	// A host without a session cannot be read: Unavailable, saying why.
	a.Stop()
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		return !c.Leader(30 * time.Second).AgentConnected("h1"), "h1 still connected"
	})
	if code, _, errOut := runCLI(append([]string{"logs", "h1", "demo"}, base...)...); code != cli.ExitUnavailable || !strings.Contains(errOut, "host h1 has no session with the leader") {
		t.Fatalf("stopped host: exit %d, %q; want %d naming the missing session", code, errOut, cli.ExitUnavailable)
	}
}

// contextWithCancel is a context for a stream, bounded by a minute.
func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c, cancel
}
