package dashboard_test

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// fakeAPI serves canned fleets for tests that need no cluster (page
// structure, limits, 1,000 simulated hosts). ACL behaviour is tested
// against a real cluster (browser_test.go).
type fakeAPI struct {
	mu       sync.Mutex
	hosts    []*rollwavev1.HostView
	cells    []*rollwavev1.CellView
	releases []*rollwavev1.Release
	// traffic and assignments come with any release GetRelease returns.
	traffic     []*rollwavev1.HostTraffic
	assignments []*rollwavev1.Assignment
	actions     []*rollwavev1.ReleaseActionRequest
	// tokens maps a secret to its token (ACL tests); nil = ACLs off.
	tokens map[string]*rollwavev1.ACLTokenInfo
}

func (f *fakeAPI) token(ctx context.Context) (*rollwavev1.ACLTokenInfo, error) {
	if f.tokens == nil {
		return nil, nil
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t := f.tokens[v[len("Bearer "):]]; t != nil {
			return t, nil
		}
	}
	return nil, status.Error(codes.Unauthenticated, "ACL token not found")
}

func (f *fakeAPI) Status(context.Context, *rollwavev1.StatusRequest, ...grpc.CallOption) (*rollwavev1.StatusResponse, error) {
	return &rollwavev1.StatusResponse{NodeId: "c1", LeaderId: "c1", RaftState: "Leader"}, nil
}

func (f *fakeAPI) ListHosts(ctx context.Context, in *rollwavev1.ListHostsRequest, _ ...grpc.CallOption) (*rollwavev1.ListHostsResponse, error) {
	if _, err := f.token(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*rollwavev1.HostView
	for _, h := range f.hosts {
		if (in.GetCell() == "" || h.GetHost().GetCell() == in.GetCell()) && (in.GetHost() == "" || h.GetHost().GetId() == in.GetHost()) {
			if !in.GetMetrics() && h.GetMetrics() != nil {
				h = &rollwavev1.HostView{Host: h.GetHost(), Liveness: h.GetLiveness(), Connected: h.GetConnected(),
					Assignments: h.GetAssignments(), Drift: h.GetDrift()}
			}
			out = append(out, h)
		}
	}
	return &rollwavev1.ListHostsResponse{Hosts: out}, nil
}

func (f *fakeAPI) ListCells(context.Context, *rollwavev1.ListCellsRequest, ...grpc.CallOption) (*rollwavev1.ListCellsResponse, error) {
	return &rollwavev1.ListCellsResponse{Cells: f.cells}, nil
}

func (f *fakeAPI) ListReleases(context.Context, *rollwavev1.ListReleasesRequest, ...grpc.CallOption) (*rollwavev1.ListReleasesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rollwavev1.ListReleasesResponse{Releases: f.releases}, nil
}

func (f *fakeAPI) GetRelease(_ context.Context, in *rollwavev1.GetReleaseRequest, _ ...grpc.CallOption) (*rollwavev1.GetReleaseResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.releases {
		if r.GetId() == in.GetId() {
			return &rollwavev1.GetReleaseResponse{Release: r, Traffic: f.traffic, Assignments: f.assignments}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no release with id %q", in.GetId())
}

func (f *fakeAPI) ListEvents(context.Context, *rollwavev1.ListEventsRequest, ...grpc.CallOption) (*rollwavev1.ListEventsResponse, error) {
	return &rollwavev1.ListEventsResponse{}, nil
}

func (f *fakeAPI) ACLTokenList(ctx context.Context, _ *rollwavev1.ACLTokenListRequest, _ ...grpc.CallOption) (*rollwavev1.ACLTokenListResponse, error) {
	if f.tokens == nil {
		return nil, status.Error(codes.FailedPrecondition, "ACLs are not enabled on this server")
	}
	t, err := f.token(ctx)
	if err != nil {
		return nil, err
	}
	return &rollwavev1.ACLTokenListResponse{Tokens: []*rollwavev1.ACLTokenInfo{t}}, nil
}

func (f *fakeAPI) act(in *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, in)
	return &rollwavev1.ReleaseActionResponse{}, nil
}

func (f *fakeAPI) PauseRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) ResumeRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) ApproveRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) AbortRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) RollbackRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) PromoteRelease(_ context.Context, in *rollwavev1.ReleaseActionRequest, _ ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error) {
	return f.act(in)
}

func (f *fakeAPI) actionCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.actions)
}

// simulatedFleet returns n hosts spread over cells of 100, the first
// third on version 2.0.0 (baking), the rest on 1.0.0 (healthy).
func simulatedFleet(n int) *fakeAPI {
	f := &fakeAPI{}
	cells := (n + 99) / 100
	for c := 0; c < cells; c++ {
		f.cells = append(f.cells, &rollwavev1.CellView{Cell: &rollwavev1.Cell{Name: fmt.Sprintf("cell-%02d", c), Risk: int32(cells - c)}, Hosts: 100})
	}
	for i := 0; i < n; i++ {
		v, st := "1.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED
		if i < n/3 {
			v, st = "2.0.0", rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING
		}
		f.hosts = append(f.hosts, &rollwavev1.HostView{
			Host: &rollwavev1.Host{Id: fmt.Sprintf("h%04d", i), Cell: fmt.Sprintf("cell-%02d", i/100),
				Apps: []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: v}}},
			Liveness: "alive", Connected: true,
			Assignments: []*rollwavev1.Assignment{{Host: fmt.Sprintf("h%04d", i), App: "api", State: st, Version: v, ReleaseId: "api-2.0.0"}},
		})
	}
	f.releases = []*rollwavev1.Release{{Id: "api-2.0.0", State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		Spec:   &rollwavev1.ReleaseSpec{App: "api", Version: "2.0.0"},
		Phases: []*rollwavev1.Phase{{Index: 0, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED}, {Index: 1, State: rollwavev1.PhaseState_PHASE_STATE_BAKING}}}}
	return f
}
