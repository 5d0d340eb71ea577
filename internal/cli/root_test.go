package cli

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestExitCodes(t *testing.T) {
	f := fixture()
	f.errs["GetRelease"] = statusErr(codes.NotFound, `release "nope" not found`)
	addr := startServer(t, f)

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring expected on stderr
	}{
		// A plain successful read.
		{"ok", []string{"members"}, ExitOK, ""},
		// The server refusing: status message only, no grpc prefix.
		{"server error", []string{"release", "get", "nope"}, ExitNotFound, `Error: release "nope" not found`},
		// Unknown top-level command, with a suggestion and the usage.
		{"unknown command", []string{"membres"}, ExitUsage, `unknown command "membres" for "rollwave"; did you mean members?`},
		// Unknown subcommand of a group.
		{"unknown subcommand", []string{"release", "bogus"}, ExitUsage, `unknown command "bogus" for "rollwave release"`},
		// Unknown flag.
		{"unknown flag", []string{"members", "-nope"}, ExitUsage, "unknown"},
		// A command with one required argument given none.
		{"missing argument", []string{"release", "get"}, ExitUsage, "needs 1 argument(s): ID"},
		// A command taking no arguments given one.
		{"extra argument", []string{"members", "extra"}, ExitUsage, "takes no arguments"},
		// A flag value of the wrong type.
		{"bad flag value", []string{"members", "-timeout", "soon"}, ExitUsage, "invalid argument"},
		// A flag value the command validates itself.
		{"bad criticality", []string{"cells", "set", "eu-1a", "-criticality", "extreme"}, ExitUsage, `invalid -criticality "extreme"`},
		{"negative risk", []string{"cells", "set", "eu-1a", "-risk", "-1"}, ExitUsage, "invalid -risk -1"},
		{"bad state", []string{"release", "list", "-state", "sleeping"}, ExitUsage, `invalid -state "sleeping"`},
		{"promote without -skip-bake", []string{"release", "promote", "api-2.4.0"}, ExitUsage, "-skip-bake"},
		{"remove-peer needs one of", []string{"operator", "raft", "remove-peer"}, ExitUsage, "exactly one of -id or -peer-address"},
		{"freeze global maybe", []string{"freeze", "global", "maybe"}, ExitUsage, "on or off"},
		{"freeze add bad time", []string{"freeze", "add", "-from", "tomorrow", "-to", "2026-12-01T00:00:00Z", "-reason", "x"}, ExitUsage, `invalid -from "tomorrow"`},
		{"freeze add backwards", []string{"freeze", "add", "-from", "2026-12-02T00:00:00Z", "-to", "2026-12-01T00:00:00Z", "-reason", "x"}, ExitUsage, "must be after"},
		// Help is not an error.
		{"help", []string{"release", "-help"}, ExitOK, ""},
		{"bare group", []string{"operator"}, ExitOK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runAt(t, addr, tc.args...).expect(t, tc.code)
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if tc.code == ExitUsage && !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("usage error without usage: %q", r.stderr)
			}
			if tc.code != ExitUsage && strings.Contains(r.stderr, "Usage:") {
				t.Errorf("runtime error shows usage: %q", r.stderr)
			}
			if n := strings.Count(r.stderr, "Error:"); tc.code != ExitOK && n != 1 {
				t.Errorf("error printed %d times: %q", n, r.stderr)
			}
		})
	}
	// Client-side validation failures must not reach the server.
	if n := len(f.requests("SetCell")) + len(f.requests("PromoteRelease")) + len(f.requests("AddFreeze")); n != 0 {
		t.Errorf("%d invalid requests reached the server", n)
	}
}

// A spec error spanning lines is printed verbatim after "Error: ", exit 6.
// TestExitCodeFollowsStatusCode: each kind of refusal has its exit code,
// and the message stays the coordinator's.
func TestExitCodeFollowsStatusCode(t *testing.T) {
	cases := []struct {
		code codes.Code
		exit int
	}{
		{codes.NotFound, ExitNotFound},
		{codes.AlreadyExists, ExitExists},
		{codes.InvalidArgument, ExitInvalid},
		{codes.OutOfRange, ExitInvalid},
		{codes.FailedPrecondition, ExitConflict},
		{codes.Aborted, ExitConflict},
		{codes.PermissionDenied, ExitDenied},
		{codes.Unauthenticated, ExitDenied},
		{codes.Unavailable, ExitUnavailable},
		{codes.ResourceExhausted, ExitUnavailable},
		{codes.Internal, ExitError},
		{codes.Unknown, ExitError},
	}
	for _, tc := range cases {
		t.Run(tc.code.String(), func(t *testing.T) {
			f := fixture()
			f.errs["PauseRelease"] = statusErr(tc.code, "refused: "+tc.code.String())
			addr := startServer(t, f)
			r := runAt(t, addr, "release", "pause", "api-2.4.0").expect(t, tc.exit)
			if !strings.Contains(r.stderr, "refused: "+tc.code.String()) || strings.Contains(r.stderr, "Usage:") {
				t.Errorf("stderr = %q", r.stderr)
			}
		})
	}
}

func TestSpecErrorVerbatim(t *testing.T) {
	f := fixture()
	specErr := "bad.hcl:21:14: phases.factor: must be at least 1, got 0.5\nbad.hcl:30:3: rollback.on_failure: unknown value \"some\"; want all, phase or pause"
	f.errs["SubmitRelease"] = statusErr(codes.InvalidArgument, specErr)
	addr := startServer(t, f)
	dir := t.TempDir()
	spec := writeTemp(t, dir, "bad.hcl", `release "api" {}`)

	r := runAt(t, addr, "release", "submit", spec).expect(t, ExitInvalid)
	if r.stderr != "Error: "+specErr+"\n" {
		t.Errorf("stderr = %q, want the status message verbatim", r.stderr)
	}
	req := lastRequest[*rollwavev1.SubmitReleaseRequest](t, f, "SubmitRelease")
	if req.GetSourceName() != spec || string(req.GetSource()) != `release "api" {}` {
		t.Errorf("request = %v; want source_name %q and the file's text", req, spec)
	}
}

func TestAddressFlagAndEnv(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	dead := deadAddress(t)

	t.Run("single dash", func(t *testing.T) {
		run(t, "-address", addr, "members").expect(t, ExitOK)
	})
	t.Run("single dash with =", func(t *testing.T) {
		run(t, "-address="+addr, "status").expect(t, ExitOK)
	})
	t.Run("double dash after the command", func(t *testing.T) {
		run(t, "members", "--address", addr).expect(t, ExitOK)
	})
	t.Run("single dash after the command", func(t *testing.T) {
		run(t, "operator", "raft", "list-peers", "-address", addr, "-json").expect(t, ExitOK)
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv(EnvAddress, addr)
		run(t, "members").expect(t, ExitOK)
	})
	t.Run("flag beats env", func(t *testing.T) {
		t.Setenv(EnvAddress, dead)
		run(t, "-address", addr, "members").expect(t, ExitOK)
	})
	t.Run("remove-peer: -address is the coordinator, -peer-address the peer", func(t *testing.T) {
		t.Setenv(EnvAddress, dead)
		run(t, "-address", addr, "operator", "raft", "remove-peer", "-peer-address", "10.0.0.3:7421").expect(t, ExitOK)
		req := lastRequest[*rollwavev1.RemovePeerRequest](t, f, "RemovePeer")
		if req.GetAddress() != "10.0.0.3:7421" || req.GetId() != "" {
			t.Errorf("request = %v", req)
		}
	})
}

func TestUnreachable(t *testing.T) {
	dead := deadAddress(t)
	r := run(t, "-address", dead, "members").expect(t, ExitUnavailable)
	for _, want := range []string{"Unavailable", dead, "-address", EnvAddress} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not mention %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "rpc error") {
		t.Errorf("stderr has grpc noise: %q", r.stderr)
	}

	t.Setenv(EnvAddress, dead)
	r = run(t, "status").expect(t, ExitUnavailable)
	if !strings.Contains(r.stderr, dead) {
		t.Errorf("stderr %q does not name the ROLLWAVE_ADDR address", r.stderr)
	}
}

// The lead adds `server` to the root; its errors must still map to exit 1
// and its flags still parse.
func TestAddedCommand(t *testing.T) {
	root := NewRootCommand("test")
	var ran bool
	server := newTestServerCommand(&ran)
	root.AddCommand(server)
	var out, errOut strings.Builder
	if code := Run(root, []string{"server", "-config", "x.hcl"}, &out, &errOut); code != ExitError || !ran {
		t.Fatalf("code %d (ran %v), want %d; stderr %q", code, ran, ExitError, errOut.String())
	}
	if errOut.String() != "Error: boom\n" {
		t.Errorf("stderr = %q", errOut.String())
	}
}

// deadAddress returns a loopback address nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
