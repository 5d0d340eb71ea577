package coordinator

import (
	"context"
	"encoding/base64"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// GossipKeyring changes or lists the gossip pool's encryption keys on this
// server; the pool spreads a change to every member. Admin only (the ACL
// table requires admin for every method it does not list).
func (o *operatorService) GossipKeyring(ctx context.Context, req *rollwavev1.GossipKeyringRequest) (*rollwavev1.GossipKeyringResponse, error) {
	var key []byte
	if req.GetOp() != "list" {
		k, err := base64.StdEncoding.DecodeString(req.GetKey())
		if err != nil || req.GetKey() == "" {
			return nil, errorf(raftfsm.ErrInvalid, "key must be base64 as printed by 'rollwave keygen'")
		}
		key = k
	}
	var err error
	switch req.GetOp() {
	case "list":
	case "install":
		err = o.s.pool.InstallKey(key)
	case "use":
		err = o.s.pool.UseKey(key)
	case "remove":
		err = o.s.pool.RemoveKey(key)
	default:
		return nil, errorf(raftfsm.ErrInvalid, "op must be list, install, use or remove; got %q", req.GetOp())
	}
	if errors.Is(err, gossip.ErrNoEncryption) {
		return nil, errorf(raftfsm.ErrConflict, "gossip is not encrypted on this server (no encrypt key configured); a keyring needs one to start from")
	}
	if err != nil {
		return nil, errorf(raftfsm.ErrConflict, "%s key: %v", req.GetOp(), err)
	}
	st, err := o.s.pool.ListKeys()
	if errors.Is(err, gossip.ErrNoEncryption) {
		return nil, errorf(raftfsm.ErrConflict, "gossip is not encrypted on this server (no encrypt key configured)")
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list keys: %v", err)
	}
	resp := &rollwavev1.GossipKeyringResponse{Primary: base64.StdEncoding.EncodeToString(st.Primary), Version: st.Version, Node: o.s.cfg.NodeID}
	for _, k := range st.Keys {
		resp.Keys = append(resp.Keys, base64.StdEncoding.EncodeToString(k))
	}
	o.s.log.Info("gossip keyring", "op", req.GetOp(), "keys", len(resp.Keys), "version", st.Version, "actor", actorOf(ctx, ""))
	return resp, nil
}
