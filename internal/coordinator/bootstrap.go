package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/gossip"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// bootstrapWhenExpected waits until BootstrapExpect servers (all started
// with the same expectation) are alive in gossip, checks that none of them
// already belongs to a cluster, and then bootstraps raft with all of them as
// voters. Every server computes the same configuration, so it does not
// matter which of them wins.
func (s *Server) bootstrapWhenExpected() {
	defer s.wg.Done()
	expect := s.cfg.BootstrapExpect
	for {
		done, err := s.tryBootstrap(expect)
		if done {
			return
		}
		if err != nil {
			s.log.Warn("bootstrap check", "error", err)
		}
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(250*time.Millisecond + backoff.New(250*time.Millisecond, 250*time.Millisecond).Next()):
		}
	}
}

// tryBootstrap returns done=true when there is nothing more to wait for:
// this server has state already, joined an existing cluster, or bootstrapped.
func (s *Server) tryBootstrap(expect int) (bool, error) {
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return false, err
	}
	if len(cf.Configuration().Servers) > 0 {
		return true, nil // existing state or already added by a leader
	}
	var servers []gossip.Member
	for _, m := range s.pool.Servers() {
		if m.Meta.Leader {
			s.log.Info("a leader exists already; waiting to be added to its cluster", "leader", m.Meta.NodeID)
			return true, nil
		}
		if m.Meta.Bootstrap != expect {
			s.log.Warn("server with a different bootstrap_expect seen; not counting it",
				"server", m.Meta.NodeID, "its_bootstrap_expect", m.Meta.Bootstrap, "ours", expect)
			continue
		}
		servers = append(servers, m)
	}
	if len(servers) < expect {
		return false, nil
	}
	// Ask each one whether it is already part of a cluster: a server added
	// to a running cluster must never bootstrap a second one.
	for _, m := range servers {
		if m.Meta.NodeID == s.cfg.NodeID {
			continue
		}
		st, err := s.peerStatus(m.Meta.GRPCAddr)
		if err != nil {
			return false, fmt.Errorf("status of %s at %s: %w", m.Meta.NodeID, m.Meta.GRPCAddr, err)
		}
		if st.GetLeaderId() != "" || st.GetLastIndex() > 0 {
			s.log.Info("peer already belongs to a cluster; waiting to be added", "peer", m.Meta.NodeID)
			return true, nil
		}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Meta.NodeID < servers[j].Meta.NodeID })
	var conf raft.Configuration
	for _, m := range servers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(m.Meta.NodeID), Address: raft.ServerAddress(m.Meta.RaftAddr),
		})
	}
	s.log.Info("bootstrapping cluster", "servers", len(conf.Servers))
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	return true, nil
}

func (s *Server) peerStatus(addr string) (*rollwavev1.StatusResponse, error) {
	conn, err := s.fwd.conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rollwavev1.NewOperatorServiceClient(conn).Status(ctx, &rollwavev1.StatusRequest{})
}
