package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestDescribeError(t *testing.T) {
	const addr = "10.0.0.9:7420"
	cases := []struct {
		name string
		err  error
		want string
	}{
		// Plain errors pass through.
		{"plain", errors.New("reading release spec: open x.hcl: no such file"), "reading release spec: open x.hcl: no such file"},
		// A status error is its message alone.
		{"status", statusErr(codes.FailedPrecondition, "release r1 is not paused"), "release r1 is not paused"},
		// Context wrapped around a status error is kept, grpc's prefix is not.
		{"wrapped", fmt.Errorf("saving snapshot: %w", statusErr(codes.Internal, "disk full")), "saving snapshot: disk full"},
		// A dial failure names the address and how to choose another.
		{"dial failure", statusErr(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.9:7420: connect: connection refused"`),
			"Unavailable: cannot reach a coordinator at 10.0.0.9:7420: dial tcp 10.0.0.9:7420: connect: connection refused\nIs it running? Choose another with -address or ROLLWAVE_ADDR."},
		// Unavailable from the coordinator itself is not a dial failure.
		{"server unavailable", statusErr(codes.Unavailable, "no raft leader"),
			"Unavailable: the coordinator at 10.0.0.9:7420 cannot serve the request: no raft leader\nTry again shortly, or choose another with -address or ROLLWAVE_ADDR."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeError(tc.err, addr); got != tc.want {
				t.Errorf("describeError = %q\nwant           %q", got, tc.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := fixture()
	f.blockStatus = true
	addr := startServer(t, f)
	r := runAt(t, addr, "-timeout", "50ms", "status").expect(t, ExitUnavailable)
	if !strings.Contains(r.stderr, "DeadlineExceeded") || !strings.Contains(r.stderr, addr) {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = runAt(t, addr, "-timeout", "0s", "members").expect(t, ExitUsage)
	if !strings.Contains(r.stderr, "invalid -timeout 0s") {
		t.Errorf("stderr = %q", r.stderr)
	}
}
