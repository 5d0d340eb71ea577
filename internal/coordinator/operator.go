package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/gossip"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// operatorService implements rollwavev1.OperatorServiceServer. Reads are
// served from this node's replica; writes run on the leader (forwarded).
type operatorService struct {
	rollwavev1.UnimplementedOperatorServiceServer
	s *Server
}

// snapshotChunk is the size of each streamed snapshot piece.
const snapshotChunk = 256 << 10

func (o *operatorService) Status(ctx context.Context, _ *rollwavev1.StatusRequest) (*rollwavev1.StatusResponse, error) {
	s := o.s
	id, addr, _ := s.leaderAddrForClients()
	return &rollwavev1.StatusResponse{
		NodeId:        s.cfg.NodeID,
		RaftState:     s.raft.State().String(),
		LeaderId:      id,
		LeaderAddress: addr,
		AppliedIndex:  s.raft.AppliedIndex(),
		LastIndex:     s.raft.LastIndex(),
		Version:       s.cfg.Version,
	}, nil
}

func (o *operatorService) Members(ctx context.Context, _ *rollwavev1.MembersRequest) (*rollwavev1.MembersResponse, error) {
	var out []*rollwavev1.Member
	for _, m := range o.s.pool.Members() {
		out = append(out, &rollwavev1.Member{
			Name:        m.Name,
			Address:     m.Addr,
			Role:        string(m.Meta.Role),
			Status:      string(m.Status),
			GrpcAddress: m.Meta.GRPCAddr,
			Cell:        m.Meta.Cell,
			Region:      m.Meta.Region,
			Leader:      m.Meta.Leader && m.Status == gossip.StatusAlive,
			Version:     m.Meta.Version,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role > out[j].Role // servers first
		}
		return out[i].Name < out[j].Name
	})
	return &rollwavev1.MembersResponse{Members: out}, nil
}

func (o *operatorService) RaftPeers(ctx context.Context, _ *rollwavev1.RaftPeersRequest) (*rollwavev1.RaftPeersResponse, error) {
	f := o.s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	_, leaderID := o.s.raft.LeaderWithID()
	var out []*rollwavev1.RaftPeer
	for _, srv := range f.Configuration().Servers {
		out = append(out, &rollwavev1.RaftPeer{
			Id:       string(srv.ID),
			Address:  string(srv.Address),
			Suffrage: suffrageName(srv.Suffrage),
			Leader:   srv.ID == leaderID,
		})
	}
	return &rollwavev1.RaftPeersResponse{Peers: out}, nil
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	case raft.Staging:
		return "staging"
	}
	return s.String()
}

func (o *operatorService) RemovePeer(ctx context.Context, req *rollwavev1.RemovePeerRequest) (*rollwavev1.RemovePeerResponse, error) {
	if (req.GetId() == "") == (req.GetAddress() == "") {
		return nil, status.Error(codes.InvalidArgument, "remove-peer needs exactly one of id or address")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.RemovePeer, o.removePeerLocal)
}

func (o *operatorService) removePeerLocal(ctx context.Context, req *rollwavev1.RemovePeerRequest) (*rollwavev1.RemovePeerResponse, error) {
	f := o.s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	for _, srv := range f.Configuration().Servers {
		if (req.GetId() != "" && string(srv.ID) == req.GetId()) || (req.GetAddress() != "" && string(srv.Address) == req.GetAddress()) {
			if string(srv.ID) == o.s.cfg.NodeID {
				return nil, status.Errorf(codes.FailedPrecondition,
					"%s is the current leader; stop it (it will leave) or remove it from another server after a new leader is elected", srv.ID)
			}
			if err := o.s.raft.RemoveServer(srv.ID, 0, o.s.cfg.ApplyTimeout).Error(); err != nil {
				return nil, status.Errorf(codes.Unavailable, "remove %s: %v", srv.ID, err)
			}
			o.s.log.Info("removed raft peer on operator request", "peer", srv.ID, "address", srv.Address)
			return &rollwavev1.RemovePeerResponse{}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no raft peer with id %q or address %q; see 'rollwave operator raft list-peers'", req.GetId(), req.GetAddress())
}

// SnapshotSave streams a backup of the leader's state (forwarded to the
// leader from a follower, so a backup is never stale).
func (o *operatorService) SnapshotSave(req *rollwavev1.SnapshotSaveRequest, stream grpc.ServerStreamingServer[rollwavev1.SnapshotChunk]) error {
	client, fctx, isLocal, err := o.s.leaderClient(stream.Context())
	if err != nil {
		return err
	}
	if !isLocal {
		up, err := client.SnapshotSave(fctx, req)
		if err != nil {
			return err
		}
		for {
			c, err := up.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := stream.Send(c); err != nil {
				return err
			}
		}
	}
	if err := o.s.raft.Barrier(o.s.cfg.ApplyTimeout).Error(); err != nil {
		return status.Errorf(codes.Unavailable, "barrier before snapshot: %v", err)
	}
	img, err := encodeBackup(o.s.fsm)
	if err != nil {
		return status.Errorf(codes.Internal, "%v", err)
	}
	for len(img) > 0 {
		n := min(len(img), snapshotChunk)
		if err := stream.Send(&rollwavev1.SnapshotChunk{Data: img[:n]}); err != nil {
			return err
		}
		img = img[n:]
	}
	return nil
}

// SnapshotRestore replaces the whole cluster state with a backup. It is
// meant for disaster recovery into a fresh cluster.
func (o *operatorService) SnapshotRestore(stream grpc.ClientStreamingServer[rollwavev1.SnapshotChunk, rollwavev1.SnapshotRestoreResponse]) error {
	var img []byte
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(img)+len(c.GetData()) > maxBackupSize {
			return status.Errorf(codes.InvalidArgument, "snapshot is larger than the %d byte limit", maxBackupSize)
		}
		img = append(img, c.GetData()...)
	}
	client, fctx, isLocal, err := o.s.leaderClient(stream.Context())
	if err != nil {
		return err
	}
	if !isLocal {
		up, err := client.SnapshotRestore(fctx)
		if err != nil {
			return err
		}
		for len(img) > 0 {
			n := min(len(img), snapshotChunk)
			if err := up.Send(&rollwavev1.SnapshotChunk{Data: img[:n]}); err != nil {
				return err
			}
			img = img[n:]
		}
		resp, err := up.CloseAndRecv()
		if err != nil {
			return err
		}
		return stream.SendAndClose(resp)
	}
	index, err := o.s.restoreBackup(img)
	if err != nil {
		if errors.Is(err, errBadBackup) {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		return status.Errorf(codes.Unavailable, "%v", err)
	}
	o.s.log.Warn("cluster state replaced from a snapshot", "index", index)
	return stream.SendAndClose(&rollwavev1.SnapshotRestoreResponse{Index: index})
}

// notLeaderf is an Unavailable status for leader-only paths that matches
// errors.Is(err, ErrNotLeader).
func notLeaderf(format string, args ...any) error {
	return withStatus(codes.Unavailable, ErrNotLeader, "%s: %v", fmt.Sprintf(format, args...), ErrNotLeader)
}
