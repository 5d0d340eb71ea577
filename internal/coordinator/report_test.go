package coordinator_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Bad report and ack requests are refused with a code and a message that
// say what was wrong, on a follower as on the leader.
func TestReportAndAckRefuseBadRequests(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	fc := c.Client(c.Followers()[0])
	bg := ctx(t)

	_, err := fc.Report(bg, &rollwavev1.ReportRequest{SinceUnixNano: time.Now().Add(time.Hour).UnixNano()})
	wantCode(t, "since in the future", err, codes.InvalidArgument, "must be a time in the past")
	_, err = fc.Report(bg, &rollwavev1.ReportRequest{SinceUnixNano: -5})
	wantCode(t, "negative since", err, codes.InvalidArgument, "must be a time in the past")
	_, err = fc.Report(bg, &rollwavev1.ReportRequest{App: "nope"})
	wantCode(t, "unknown app", err, codes.NotFound, `no app named "nope"`)
	// An empty history: the all row, every duration undefined.
	rep, err := fc.Report(bg, &rollwavev1.ReportRequest{})
	if err != nil || len(rep.GetApps()) != 1 || rep.GetApps()[0].GetApp() != "all" || rep.GetApps()[0].GetMtbfMs() != -1 ||
		rep.GetUntilUnixNano()-rep.GetSinceUnixNano() != (30*24*time.Hour).Nanoseconds() {
		t.Fatalf("report of an empty history = %v, %v", rep, err)
	}

	_, err = fc.AckRelease(bg, &rollwavev1.ReleaseActionRequest{})
	wantCode(t, "ack without an id", err, codes.InvalidArgument, "ack needs a release id")
	_, err = fc.AckRelease(bg, &rollwavev1.ReleaseActionRequest{Id: "nope", Actor: "ops"})
	wantCode(t, "ack of an unknown release", err, codes.NotFound, `no release with id "nope"`)
}
