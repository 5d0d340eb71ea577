package coordinator_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// specSource returns a valid release spec for app with the given name.
func specSource(name, app string) []byte {
	return []byte(fmt.Sprintf(`release %q {
  app     = %q
  version = "1.0.0"
  artifact {
    url    = "file:///srv/artifacts/%s.tar.gz"
    sha256 = "9f2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"
  }
  unit {
    exec_start = "{{slot_dir}}/bin/%s --listen 127.0.0.1:{{port}}"
  }
  slots {
    blue_port  = 18081
    green_port = 18082
  }
  traffic {
    mode   = "proxy"
    listen = "127.0.0.1:18080"
  }
  health {
    check "http" {
      url = "http://127.0.0.1:{{port}}/healthz"
    }
  }
}
`, name, app, app, app))
}

func TestClusterElectsOneLeaderWithThreeVoters(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	peers, err := c.Client(c.Followers()[0]).RaftPeers(ctx(t), &rollwavev1.RaftPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(peers.GetPeers()) != 3 {
		t.Fatalf("want 3 raft peers, got %v", peers.GetPeers())
	}
	leaders := 0
	for _, p := range peers.GetPeers() {
		if p.GetSuffrage() != "voter" {
			t.Errorf("peer %s is %s, want voter", p.GetId(), p.GetSuffrage())
		}
		if p.GetLeader() {
			leaders++
			if p.GetId() != leader.NodeID() {
				t.Errorf("peers say %s leads, cluster says %s", p.GetId(), leader.NodeID())
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("want exactly one leader among peers, got %d", leaders)
	}
	// Gossip shows the leader too.
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		m, ok := c.Followers()[0].Gossip().Leader()
		return ok && m.Meta.NodeID == leader.NodeID(), fmt.Sprintf("gossip leader %+v %v", m, ok)
	})
}

func TestReleaseSubmittedThroughFollowerIsReadableOnAll(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	f := c.Followers()[0]
	resp, err := c.Client(f).SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{
		SourceName: "api.hcl", Source: specSource("api-1.0.0", "api"), Actor: "test",
	})
	if err != nil {
		t.Fatalf("submit through follower: %v", err)
	}
	if resp.GetRelease().GetState() != rollwavev1.ReleaseState_RELEASE_STATE_PENDING {
		t.Fatalf("new release state = %s, want pending", resp.GetRelease().GetState())
	}
	// Read-your-writes through the same server, with no waiting: the
	// follower answers a forwarded write only once its replica applied it.
	if _, err := c.Client(f).GetRelease(ctx(t), &rollwavev1.GetReleaseRequest{Id: "api-1.0.0"}); err != nil {
		t.Fatalf("read right after a write through the same follower: %v", err)
	}
	for _, s := range c.Running() {
		testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
			r, err := c.Client(s).GetRelease(ctx(t), &rollwavev1.GetReleaseRequest{Id: "api-1.0.0"})
			return err == nil && r.GetRelease().GetSpec().GetApp() == "api", fmt.Sprintf("%s: %v", s.NodeID(), err)
		})
	}
	// A second release for the same app is refused, naming the first.
	_, err = c.Client(f).SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{
		SourceName: "api2.hcl", Source: specSource("api-1.0.1", "api"), Actor: "test",
	})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "api-1.0.0") {
		t.Fatalf("second release for the app: want FailedPrecondition naming api-1.0.0, got %v", err)
	}
}

func TestBadSpecIsRefusedAndChangesNothing(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	before := leader.Raft().LastIndex()
	bad := strings.Replace(string(specSource("x-1", "x")), `sha256 = "9f2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"`, "", 1)
	for _, s := range c.Running() {
		_, err := c.Client(s).SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "bad.hcl", Source: []byte(bad)})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%s: want InvalidArgument, got %v", s.NodeID(), err)
		}
		msg := status.Convert(err).Message()
		if !strings.Contains(msg, "bad.hcl:") || !strings.Contains(msg, "sha256") {
			t.Fatalf("%s: error should name bad.hcl:line and sha256, got %q", s.NodeID(), msg)
		}
	}
	if after := leader.Raft().LastIndex(); after != before {
		t.Fatalf("a refused spec wrote to raft: last index %d -> %d", before, after)
	}
	list, err := c.Client(leader).ListReleases(ctx(t), &rollwavev1.ListReleasesRequest{})
	if err != nil || len(list.GetReleases()) != 0 {
		t.Fatalf("want no releases, got %v %v", list.GetReleases(), err)
	}
}

func TestLeaderKillKeepsAcknowledgedWrites(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	client := c.Client(c.Followers()[0])
	const writes = 20
	for i := 0; i < writes; i++ {
		if _, err := client.SetCell(ctx(t), &rollwavev1.SetCellRequest{
			Cell: &rollwavev1.Cell{Name: fmt.Sprintf("cell-%02d", i), Risk: int32(i), Criticality: "low", Users: int64(i * 10)},
		}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if _, err := client.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "a.hcl", Source: specSource("a-1", "a")}); err != nil {
		t.Fatal(err)
	}
	c.Kill(c.Index(leader))
	start := time.Now()
	newLeader := c.Leader(30 * time.Second)
	t.Logf("new leader %s elected %s after killing %s", newLeader.NodeID(), time.Since(start).Round(time.Millisecond), leader.NodeID())
	if newLeader == leader {
		t.Fatal("killed server still leads")
	}
	for _, s := range c.Running() {
		testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
			n := len(s.FSM().State().Cells())
			return n == writes && s.FSM().State().Release("a-1") != nil, fmt.Sprintf("%s has %d cells", s.NodeID(), n)
		})
	}
	// The survivors still accept writes.
	if _, err := c.Client(newLeader).SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "after", Criticality: "low"}}); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
}

func TestStoppedServerRestartsFromDataDirAndCatchesUp(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	victim := c.Followers()[0]
	vi := c.Index(victim)
	client := c.Client(c.Followers()[1])
	if _, err := client.SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "before", Criticality: "low"}}); err != nil {
		t.Fatal(err)
	}
	c.Kill(vi)
	for i := 0; i < 5; i++ {
		if _, err := client.SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: fmt.Sprintf("while-down-%d", i), Criticality: "low"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.Configs[vi].DataDir, "raft", "raft.db")); err != nil {
		t.Fatalf("data dir of stopped server: %v", err)
	}
	restarted := c.Start(vi)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := len(restarted.FSM().State().Cells())
		return n == 6, fmt.Sprintf("restarted server has %d of 6 cells", n)
	})
	c.Leader(30 * time.Second)
}

func TestSnapshotSaveAndRestoreIntoFreshCluster(t *testing.T) {
	src := coordtest.NewCluster(t, 3)
	client := src.Client(src.Followers()[0])
	for i := 0; i < 3; i++ {
		if _, err := client.SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: fmt.Sprintf("c%d", i), Risk: int32(i), Criticality: "medium"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "s.hcl", Source: specSource("svc-1", "svc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddFreeze(ctx(t), &rollwavev1.AddFreezeRequest{FromUnixNano: 1e18, ToUnixNano: 2e18, Reason: "holidays"}); err != nil {
		t.Fatal(err)
	}
	// Save through a follower: it is forwarded to the leader.
	stream, err := client.SnapshotSave(ctx(t), &rollwavev1.SnapshotSaveRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var img []byte
	for {
		ch, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		img = append(img, ch.GetData()...)
	}
	want := src.Leader(5 * time.Second).FSM().State().Dump()

	dst := coordtest.NewCluster(t, 3)
	up, err := dst.Client(dst.Followers()[0]).SnapshotRestore(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for len(img) > 0 {
		n := min(len(img), 1000)
		if err := up.Send(&rollwavev1.SnapshotChunk{Data: img[:n]}); err != nil {
			t.Fatal(err)
		}
		img = img[n:]
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for _, s := range dst.Running() {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			got := s.FSM().State().Dump()
			return got == want, fmt.Sprintf("%s state differs:\n got %.400s\nwant %.400s", s.NodeID(), got, want)
		})
	}
}

func TestSnapshotRestoreRefusesDamagedFile(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	up, err := c.Client(c.Running()[0]).SnapshotRestore(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Send(&rollwavev1.SnapshotChunk{Data: []byte("RWBACKUP-but-not-really-a-backup-file-at-all-0123456789")}); err != nil {
		t.Fatal(err)
	}
	_, err = up.CloseAndRecv()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not a valid rollwave snapshot") {
		t.Fatalf("want InvalidArgument about the file, got %v", err)
	}
}

func TestServerJoiningLaterIsAddedAsVoter(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	cfg := coordtest.FastConfig(t, "c4")
	cfg.Join = []string{leader.GossipAddr()}
	s4, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s4.Shutdown() })
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		f := leader.Raft().GetConfiguration()
		if f.Error() != nil {
			return false, f.Error().Error()
		}
		for _, srv := range f.Configuration().Servers {
			if srv.ID == "c4" && srv.Suffrage == raft.Voter {
				return true, ""
			}
		}
		return false, fmt.Sprintf("configuration %v", f.Configuration().Servers)
	})
	if _, err := c.Client(leader).SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "x", Criticality: "low"}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return s4.FSM().State().Cell("x") != nil, "c4 has not replicated cell x"
	})
}

func TestGracefulLeaveRemovesServerFromRaft(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	// The leader itself leaves: it hands leadership over first.
	if err := leader.Leave(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Kill(c.Index(leader))
	newLeader := c.Leader(30 * time.Second)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		f := newLeader.Raft().GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 2, fmt.Sprintf("configuration %v", f.Configuration().Servers)
	})
}

func TestRemovePeerOfDeadServer(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	dead := c.Followers()[0]
	deadID := dead.NodeID()
	c.Kill(c.Index(dead))
	client := c.Client(c.Followers()[0])
	_, err := client.RemovePeer(ctx(t), &rollwavev1.RemovePeerRequest{Id: "no-such-node"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("remove unknown peer: want NotFound, got %v", err)
	}
	if _, err := client.RemovePeer(ctx(t), &rollwavev1.RemovePeerRequest{Id: deadID}); err != nil {
		t.Fatalf("remove dead peer: %v", err)
	}
	peers, err := client.RaftPeers(ctx(t), &rollwavev1.RaftPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers.GetPeers() {
		if p.GetId() == deadID {
			t.Fatalf("%s still a peer: %v", deadID, peers.GetPeers())
		}
	}
}
