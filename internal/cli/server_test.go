package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// testNow is the clock every test command sees.
var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fakeOperator is an OperatorService that records each request by method
// name and answers with canned data; errs makes a method fail.
type fakeOperator struct {
	rollwavev1.UnimplementedOperatorServiceServer

	mu   sync.Mutex
	reqs map[string][]proto.Message
	errs map[string]error

	status   *rollwavev1.StatusResponse
	members  []*rollwavev1.Member
	peers    []*rollwavev1.RaftPeer
	hosts    []*rollwavev1.HostView
	cells    []*rollwavev1.CellView
	plan     *rollwavev1.PlanReleaseResponse
	release  *rollwavev1.GetReleaseResponse
	releases []*rollwavev1.Release
	events   []*rollwavev1.Event
	freezes  *rollwavev1.ListFreezesResponse
	notify   *rollwavev1.NotifyStatusResponse
	report   *rollwavev1.ReportResponse
	snapshot [][]byte                           // chunks SnapshotSave streams
	saveErr  error                              // returned after the chunks
	restored [][]byte                           // chunks SnapshotRestore received
	watch    []*rollwavev1.WatchReleaseResponse // messages WatchRelease streams
	// watchFirst, when set, are the messages of the first WatchRelease
	// calls, one script per call; later calls stream watch.
	watchFirst [][]*rollwavev1.WatchReleaseResponse
	logs       []*rollwavev1.HostLogsResponse // messages HostLogs streams
	restoreAt  uint64
	// blockStatus makes Status wait for the caller's deadline.
	blockStatus bool
}

func newFakeOperator() *fakeOperator {
	return &fakeOperator{reqs: map[string][]proto.Message{}, errs: map[string]error{}}
}

// record notes a request and returns the error configured for method.
func (f *fakeOperator) record(method string, req proto.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs[method] = append(f.reqs[method], proto.Clone(req))
	return f.errs[method]
}

func (f *fakeOperator) requests(method string) []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[method]
}

// lastRequest returns the last request of method, failing the test if none.
func lastRequest[M proto.Message](t *testing.T, f *fakeOperator, method string) M {
	t.Helper()
	reqs := f.requests(method)
	if len(reqs) == 0 {
		t.Fatalf("no %s request reached the server", method)
	}
	return reqs[len(reqs)-1].(M)
}

func (f *fakeOperator) Status(ctx context.Context, req *rollwavev1.StatusRequest) (*rollwavev1.StatusResponse, error) {
	if f.blockStatus {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return f.status, f.record("Status", req)
}

func (f *fakeOperator) Members(_ context.Context, req *rollwavev1.MembersRequest) (*rollwavev1.MembersResponse, error) {
	return &rollwavev1.MembersResponse{Members: f.members}, f.record("Members", req)
}

func (f *fakeOperator) RaftPeers(_ context.Context, req *rollwavev1.RaftPeersRequest) (*rollwavev1.RaftPeersResponse, error) {
	return &rollwavev1.RaftPeersResponse{Peers: f.peers}, f.record("RaftPeers", req)
}

func (f *fakeOperator) RemovePeer(_ context.Context, req *rollwavev1.RemovePeerRequest) (*rollwavev1.RemovePeerResponse, error) {
	return &rollwavev1.RemovePeerResponse{}, f.record("RemovePeer", req)
}

func (f *fakeOperator) SnapshotSave(req *rollwavev1.SnapshotSaveRequest, stream grpc.ServerStreamingServer[rollwavev1.SnapshotChunk]) error {
	if err := f.record("SnapshotSave", req); err != nil {
		return err
	}
	for _, c := range f.snapshot {
		if err := stream.Send(&rollwavev1.SnapshotChunk{Data: c}); err != nil {
			return err
		}
	}
	return f.saveErr
}

func (f *fakeOperator) SnapshotRestore(stream grpc.ClientStreamingServer[rollwavev1.SnapshotChunk, rollwavev1.SnapshotRestoreResponse]) error {
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.restored = append(f.restored, c.GetData())
		f.mu.Unlock()
	}
	if err := f.record("SnapshotRestore", &rollwavev1.SnapshotRestoreResponse{}); err != nil {
		return err
	}
	return stream.SendAndClose(&rollwavev1.SnapshotRestoreResponse{Index: f.restoreAt})
}

func (f *fakeOperator) ListHosts(_ context.Context, req *rollwavev1.ListHostsRequest) (*rollwavev1.ListHostsResponse, error) {
	return &rollwavev1.ListHostsResponse{Hosts: f.hosts}, f.record("ListHosts", req)
}

func (f *fakeOperator) ListCells(_ context.Context, req *rollwavev1.ListCellsRequest) (*rollwavev1.ListCellsResponse, error) {
	return &rollwavev1.ListCellsResponse{Cells: f.cells}, f.record("ListCells", req)
}

func (f *fakeOperator) SetCell(_ context.Context, req *rollwavev1.SetCellRequest) (*rollwavev1.SetCellResponse, error) {
	return &rollwavev1.SetCellResponse{Cell: req.GetCell()}, f.record("SetCell", req)
}

func (f *fakeOperator) DeleteCell(_ context.Context, req *rollwavev1.DeleteCellRequest) (*rollwavev1.DeleteCellResponse, error) {
	return &rollwavev1.DeleteCellResponse{}, f.record("DeleteCell", req)
}

func (f *fakeOperator) SubmitRelease(_ context.Context, req *rollwavev1.SubmitReleaseRequest) (*rollwavev1.SubmitReleaseResponse, error) {
	state := rollwavev1.ReleaseState_RELEASE_STATE_PENDING
	if req.GetStart() {
		state = rollwavev1.ReleaseState_RELEASE_STATE_RUNNING
	}
	return &rollwavev1.SubmitReleaseResponse{Release: &rollwavev1.Release{Id: "api-2.4.0", State: state}}, f.record("SubmitRelease", req)
}

func (f *fakeOperator) PlanRelease(_ context.Context, req *rollwavev1.PlanReleaseRequest) (*rollwavev1.PlanReleaseResponse, error) {
	return f.plan, f.record("PlanRelease", req)
}

func (f *fakeOperator) GetRelease(_ context.Context, req *rollwavev1.GetReleaseRequest) (*rollwavev1.GetReleaseResponse, error) {
	return f.release, f.record("GetRelease", req)
}

func (f *fakeOperator) ListReleases(_ context.Context, req *rollwavev1.ListReleasesRequest) (*rollwavev1.ListReleasesResponse, error) {
	return &rollwavev1.ListReleasesResponse{Releases: f.releases}, f.record("ListReleases", req)
}

// action answers every ReleaseActionRequest with the release in a state
// that shows which method ran.
func (f *fakeOperator) action(method string, state rollwavev1.ReleaseState, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return &rollwavev1.ReleaseActionResponse{Release: &rollwavev1.Release{Id: req.GetId(), State: state, Reason: req.GetReason()}},
		f.record(method, req)
}

func (f *fakeOperator) PauseRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("PauseRelease", rollwavev1.ReleaseState_RELEASE_STATE_PAUSED, req)
}

func (f *fakeOperator) ResumeRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("ResumeRelease", rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, req)
}

func (f *fakeOperator) ApproveRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("ApproveRelease", rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, req)
}

func (f *fakeOperator) AbortRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("AbortRelease", rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, req)
}

func (f *fakeOperator) RollbackRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("RollbackRelease", rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, req)
}

// AckRelease answers with the release acknowledged by the request's actor at testNow.
func (f *fakeOperator) AckRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return &rollwavev1.ReleaseActionResponse{Release: &rollwavev1.Release{Id: req.GetId(), State: rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
		AckedBy: req.GetActor(), AckedUnixNano: nanos(testNow), AckReason: req.GetReason()}}, f.record("AckRelease", req)
}

func (f *fakeOperator) Report(_ context.Context, req *rollwavev1.ReportRequest) (*rollwavev1.ReportResponse, error) {
	return f.report, f.record("Report", req)
}

func (f *fakeOperator) PromoteRelease(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return f.action("PromoteRelease", rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, req)
}

// ListEvents honours after_seq and limit like a real server would.
func (f *fakeOperator) ListEvents(_ context.Context, req *rollwavev1.ListEventsRequest) (*rollwavev1.ListEventsResponse, error) {
	var out []*rollwavev1.Event
	for _, e := range f.events {
		if e.GetSeq() > req.GetAfterSeq() && (req.GetLimit() == 0 || len(out) < int(req.GetLimit())) {
			out = append(out, e)
		}
	}
	return &rollwavev1.ListEventsResponse{Events: out}, f.record("ListEvents", req)
}

func (f *fakeOperator) WatchRelease(req *rollwavev1.WatchReleaseRequest, stream grpc.ServerStreamingServer[rollwavev1.WatchReleaseResponse]) error {
	if err := f.record("WatchRelease", req); err != nil {
		return err
	}
	f.mu.Lock()
	script := f.watch
	if len(f.watchFirst) > 0 {
		script, f.watchFirst = f.watchFirst[0], f.watchFirst[1:]
	}
	f.mu.Unlock()
	for _, m := range script {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeOperator) HostLogs(req *rollwavev1.HostLogsRequest, stream grpc.ServerStreamingServer[rollwavev1.HostLogsResponse]) error {
	if err := f.record("HostLogs", req); err != nil {
		return err
	}
	for _, m := range f.logs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeOperator) AddFreeze(_ context.Context, req *rollwavev1.AddFreezeRequest) (*rollwavev1.AddFreezeResponse, error) {
	return &rollwavev1.AddFreezeResponse{Window: &rollwavev1.FreezeWindow{
		Id: "fz-1", FromUnixNano: req.GetFromUnixNano(), ToUnixNano: req.GetToUnixNano(), Reason: req.GetReason(),
		Cron: req.GetCron(), DurationMs: req.GetDurationMs(), Timezone: req.GetTimezone(), Apps: req.GetApps(), Cells: req.GetCells(),
	}}, f.record("AddFreeze", req)
}

func (f *fakeOperator) OverrideFreeze(_ context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return &rollwavev1.ReleaseActionResponse{Release: &rollwavev1.Release{Id: req.GetId(), State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		FreezeOverride: &rollwavev1.FreezeOverride{Actor: req.GetActor(), Reason: req.GetReason(), TimeUnixNano: nanos(testNow)}}}, f.record("OverrideFreeze", req)
}

func (f *fakeOperator) ListFreezes(_ context.Context, req *rollwavev1.ListFreezesRequest) (*rollwavev1.ListFreezesResponse, error) {
	return f.freezes, f.record("ListFreezes", req)
}

func (f *fakeOperator) RemoveFreeze(_ context.Context, req *rollwavev1.RemoveFreezeRequest) (*rollwavev1.RemoveFreezeResponse, error) {
	return &rollwavev1.RemoveFreezeResponse{}, f.record("RemoveFreeze", req)
}

func (f *fakeOperator) SetGlobalFreeze(_ context.Context, req *rollwavev1.SetGlobalFreezeRequest) (*rollwavev1.SetGlobalFreezeResponse, error) {
	return &rollwavev1.SetGlobalFreezeResponse{}, f.record("SetGlobalFreeze", req)
}

// startServer serves f on a loopback port until the test ends and returns
// the address.
func startServer(t *testing.T, f *fakeOperator) string {
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

// result is what one CLI invocation produced.
type result struct {
	code           int
	stdout, stderr string
}

// run executes the CLI with args, with the fixed test clock.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(newRoot("test", &app{now: func() time.Time { return testNow }}), args, &stdout, &stderr)
	res := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("rollwave %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, res.stdout, res.stderr)
	return res
}

// runAt runs the CLI against addr with the single-dash -address flag.
func runAt(t *testing.T, addr string, args ...string) result {
	t.Helper()
	return run(t, append([]string{"-address", addr}, args...)...)
}

func (r result) expect(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	return r
}

func statusErr(c codes.Code, msg string) error { return status.Error(c, msg) }

func (f *fakeOperator) NotifyStatus(_ context.Context, req *rollwavev1.NotifyStatusRequest) (*rollwavev1.NotifyStatusResponse, error) {
	return f.notify, f.record("NotifyStatus", req)
}
