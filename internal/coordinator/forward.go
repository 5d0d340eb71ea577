package coordinator

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// forwardedKey marks a request a follower forwarded, so a request never
// bounces between two servers that disagree about who leads.
const forwardedKey = "rollwave-forwarded-by"

// forwarder keeps one client connection per peer gRPC address.
type forwarder struct {
	s     *Server
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newForwarder(s *Server) *forwarder {
	return &forwarder{s: s, conns: map[string]*grpc.ClientConn{}}
}

func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	creds, err := f.s.clientCreds()
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c, err := grpc.NewClient(addr, creds,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	f.conns[addr] = c
	return c, nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, c := range f.conns {
		c.Close()
		delete(f.conns, addr)
	}
}

// LeaderGRPCAddr returns the leader's id and gRPC address as known from
// raft (who leads) and gossip (where its gRPC API listens).
func (s *Server) LeaderGRPCAddr() (id, addr string, ok bool) {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	if string(lid) == s.cfg.NodeID {
		return s.cfg.NodeID, s.grpcAddr, true
	}
	for _, m := range s.pool.Servers() {
		if m.Meta.NodeID == string(lid) && m.Meta.GRPCAddr != "" {
			return string(lid), m.Meta.GRPCAddr, true
		}
	}
	return string(lid), "", false
}

// leaderClient returns a client for the leader when this node is not the
// leader, with an outgoing context marked as forwarded. isLocal is true when
// this node leads and the caller should serve the request itself.
func (s *Server) leaderClient(ctx context.Context) (client rollwavev1.OperatorServiceClient, fctx context.Context, isLocal bool, err error) {
	if s.IsLeader() {
		return nil, ctx, true, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, nil, false, status.Errorf(codes.Unavailable,
			"server %s received a forwarded write but is not the leader; leadership is changing, retry", s.cfg.NodeID)
	}
	id, addr, ok := s.LeaderGRPCAddr()
	if !ok {
		if id == "" {
			return nil, nil, false, status.Error(codes.Unavailable, "no raft leader is known right now; the cluster may be electing one or has lost quorum")
		}
		return nil, nil, false, status.Errorf(codes.Unavailable, "the leader is %s but its gRPC address is not known from gossip yet", id)
	}
	conn, err := s.fwd.conn(addr)
	if err != nil {
		return nil, nil, false, status.Errorf(codes.Unavailable, "forward to leader %s: %v", id, err)
	}
	out := metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.NodeID)
	// The caller's ACL token goes along; the leader checks it again.
	out = forwardToken(ctx, out)
	return rollwavev1.NewOperatorServiceClient(conn), out, false, nil
}

// indexKey carries, in a write's response header, the raft index the
// leader had applied when it answered.
const indexKey = "rollwave-applied-index"

// forwardCatchUp bounds how long a follower waits to apply a write it
// forwarded before answering.
const forwardCatchUp = 5 * time.Second

// forward runs a write either locally (this node leads) or on the leader.
// After a forwarded write the follower waits until its own replica has
// applied it, so a client that writes and then reads through the same
// server always reads its own write.
func forward[Req any, Resp any](s *Server, ctx context.Context, req Req,
	remote func(rollwavev1.OperatorServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error),
	local func(context.Context, Req) (Resp, error),
) (Resp, error) {
	client, fctx, isLocal, err := s.leaderClient(ctx)
	if err != nil {
		var zero Resp
		return zero, err
	}
	if isLocal {
		resp, err := local(ctx, req)
		if err == nil {
			idx := strconv.FormatUint(s.fsm.State().AppliedIndex(), 10)
			_ = grpc.SetHeader(ctx, metadata.Pairs(indexKey, idx))
		}
		return resp, err
	}
	var header metadata.MD
	resp, err := remote(client, fctx, req, grpc.Header(&header))
	if err != nil {
		return resp, fromRemote(err) // the leader's error kind, for errors.Is here
	}
	if v := header.Get(indexKey); len(v) == 1 {
		if idx, perr := strconv.ParseUint(v[0], 10, 64); perr == nil {
			s.waitApplied(ctx, idx, forwardCatchUp)
		}
	}
	return resp, nil
}

// waitApplied waits (bounded) until the local replica has applied index.
// It reports whether it got there; callers answer either way, since the
// write itself is committed.
func (s *Server) waitApplied(ctx context.Context, index uint64, max time.Duration) bool {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	st := s.fsm.State()
	for {
		changed := st.Changed()
		if st.AppliedIndex() >= index {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			s.log.Warn("replica did not catch up with a forwarded write in time", "index", index, "applied", st.AppliedIndex())
			return false
		case <-ctx.Done():
			return false
		case <-s.shutdownCh:
			return false
		}
	}
}
