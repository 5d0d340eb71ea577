package coordinator_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 11 item 2: one PlanRelease (callable with a read token) holding a
// deeply nested spec ended the coordinator with "fatal error: stack
// overflow". Every such spec is now InvalidArgument naming the file,
// position and limit; nothing is written; the server keeps serving.
func TestSecurityDeepNestingPlanRelease(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	cl := c.Client(leader)
	before := leader.Raft().LastIndex()

	list := "[" + strings.Repeat("1,", 300) + "1]"
	cases := []struct {
		name, file, src string
		want            string
	}{
		// The inputs, over the size limit.
		{"json 200k brackets", "deep.json", strings.Repeat("[", 200_000), fmt.Sprintf("deep.json:1:1: the file is 200000 bytes, over the limit of %d bytes", spec.MaxSourceBytes)},
		{"hcl 100k parens", "deep.hcl", `release "x" { app = ` + strings.Repeat("(", 100_000) + " }", fmt.Sprintf("deep.hcl:1:1: the file is 100022 bytes, over the limit of %d bytes", spec.MaxSourceBytes)},
		// Under the size limit, too deep.
		{"json 50k brackets", "deep.json", strings.Repeat("[", 50_000), "deep.json:1:33: nesting is deeper than 32 levels"},
		{"hcl 50k parens", "deep.hcl", `release "x" { app = ` + strings.Repeat("(", 50_000) + " }", "deep.hcl:1:52: nesting is deeper than 32 levels"},
		{"hcl unary chain", "deep.hcl", `release "x" { app = ` + strings.Repeat("-", 50_000) + "1 }", "deep.hcl:1:52: nesting is deeper than 32 levels"},
		// Small but costly.
		{"nested for", "m.hcl", `release "x" { app = [for a in ` + list + `: [for b in ` + list + `: [for c in ` + list + `: 1]]] }`,
			"m.hcl:1:21: release.app: for expressions and %{for} directives are not supported"},
		{"huge number", "m.hcl", `release "x" { app = 1e100000000 }`, "m.hcl:1:21: number 1e100000000 is out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.PlanRelease(ctx(t), &rollwavev1.PlanReleaseRequest{SourceName: tc.file, Source: []byte(tc.src)})
			wantInvalid(t, "PlanRelease", err, tc.want)
			_, err = cl.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: tc.file, Source: []byte(tc.src)})
			wantInvalid(t, "SubmitRelease", err, tc.want)
		})
	}

	// Still up, still serving, nothing written.
	if _, err := cl.ListReleases(ctx(t), &rollwavev1.ListReleasesRequest{}); err != nil {
		t.Fatalf("after the attack: %v", err)
	}
	if after := leader.Raft().LastIndex(); after != before {
		t.Fatalf("refused specs wrote to raft: last index %d -> %d", before, after)
	}
	if _, err := cl.PlanRelease(ctx(t), &rollwavev1.PlanReleaseRequest{SourceName: "ok.hcl", Source: specSource("ok-1", "ok")}); status.Code(err) == codes.InvalidArgument {
		t.Fatalf("a good spec after the attack: %v", err)
	}
}

func wantInvalid(t *testing.T, call string, err error, want string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("%s: want InvalidArgument, got %v", call, err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
		t.Fatalf("%s: want %q in the error, got %q", call, want, msg)
	}
}
