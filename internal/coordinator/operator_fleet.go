package coordinator

import (
	"context"
	"sort"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ListHosts is answered by the leader when one is reachable, since only the
// leader knows which agents have a session; otherwise from the local
// replica (connected is then false for every host, and no host has
// metrics: heartbeats are kept in the leader's memory only).
//
// Last contact: raft holds a host's last contact as written at most every
// contactPersistEvery, so it can be that much behind. The leader shows
// the time of the host's last message on its session instead (or of the
// last message before that session ended), whichever is later. An answer
// from a follower's replica shows raft's value (or a later contact this
// server saw itself while it led); the CLI prints its age.
func (o *operatorService) ListHosts(ctx context.Context, req *rollwavev1.ListHostsRequest) (*rollwavev1.ListHostsResponse, error) {
	if client, fctx, isLocal, err := o.s.leaderClient(ctx); err == nil && !isLocal {
		if resp, err := client.ListHosts(fctx, req); err == nil {
			return resp, nil
		}
	}
	liveness := o.s.livenessByName()
	drifted := map[string][]*rollwavev1.DriftedHost{}
	for _, d := range drift.All(o.s.fsm.State()) {
		drifted[d.GetHost()] = append(drifted[d.GetHost()], d)
	}
	var out []*rollwavev1.HostView
	for _, h := range o.s.fsm.State().Hosts() {
		if (req.GetCell() != "" && h.GetCell() != req.GetCell()) || (req.GetHost() != "" && h.GetId() != req.GetHost()) {
			continue
		}
		if req.GetDriftOnly() && len(drifted[h.GetId()]) == 0 {
			continue
		}
		l, ok := liveness[h.GetId()]
		if !ok {
			l = "unknown"
		}
		if at, ok := o.s.agents.lastContact(h.GetId()); ok && at.UnixNano() > h.GetLastContactUnixNano() {
			h.LastContactUnixNano = at.UnixNano()
		}
		hv := &rollwavev1.HostView{
			Host:        h,
			Liveness:    l,
			Connected:   o.s.agents.connected(h.GetId()),
			Assignments: o.s.fsm.State().HostAssignments(h.GetId()),
			Drift:       drifted[h.GetId()],
		}
		if req.GetMetrics() {
			hv.Metrics = o.s.hostSample(h.GetId())
		}
		out = append(out, hv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host.GetId() < out[j].Host.GetId() })
	return &rollwavev1.ListHostsResponse{Hosts: out}, nil
}

// livenessByName maps gossip member names to their status.
func (s *Server) livenessByName() map[string]string {
	m := map[string]string{}
	for _, mem := range s.pool.Members() {
		m[mem.Name] = string(mem.Status)
	}
	return m
}

func (o *operatorService) ListCells(ctx context.Context, _ *rollwavev1.ListCellsRequest) (*rollwavev1.ListCellsResponse, error) {
	counts := map[string]int32{}
	for _, h := range o.s.fsm.State().Hosts() {
		counts[h.GetCell()]++
	}
	var out []*rollwavev1.CellView
	seen := map[string]bool{}
	for _, c := range o.s.fsm.State().Cells() {
		seen[c.GetName()] = true
		out = append(out, &rollwavev1.CellView{Cell: c, Hosts: counts[c.GetName()]})
	}
	// Cells that hosts report but nobody described yet still show up.
	for name, n := range counts {
		if !seen[name] && name != "" {
			out = append(out, &rollwavev1.CellView{Cell: &rollwavev1.Cell{Name: name}, Hosts: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cell.GetName() < out[j].Cell.GetName() })
	return &rollwavev1.ListCellsResponse{Cells: out}, nil
}

var criticalities = map[string]bool{"low": true, "medium": true, "high": true, "critical": true}

func (o *operatorService) SetCell(ctx context.Context, req *rollwavev1.SetCellRequest) (*rollwavev1.SetCellResponse, error) {
	c := req.GetCell()
	switch {
	case c.GetName() == "":
		return nil, errorf(raftfsm.ErrInvalid, "cell name must not be empty")
	case c.GetRisk() < 0:
		return nil, errorf(raftfsm.ErrInvalid, "cell %q: risk must be 0 or more, got %d", c.GetName(), c.GetRisk())
	case c.GetUsers() < 0:
		return nil, errorf(raftfsm.ErrInvalid, "cell %q: users must be 0 or more, got %d", c.GetName(), c.GetUsers())
	case c.GetCriticality() != "" && !criticalities[c.GetCriticality()]:
		return nil, errorf(raftfsm.ErrInvalid, "cell %q: criticality must be one of low, medium, high, critical; got %q", c.GetName(), c.GetCriticality())
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.SetCell,
		func(ctx context.Context, req *rollwavev1.SetCellRequest) (*rollwavev1.SetCellResponse, error) {
			c := cloneCell(req.GetCell())
			if c.Criticality == "" {
				c.Criticality = "low"
			}
			now := time.Now().UnixNano()
			c.UpdatedUnixNano = now
			if err := o.s.applyErr(raftfsm.SetCell, &rollwavev1.SetCellCommand{TimeUnixNano: now, Cell: c, Actor: actorOf(ctx, req.GetActor())}); err != nil {
				return nil, err
			}
			return &rollwavev1.SetCellResponse{Cell: o.s.fsm.State().Cell(c.GetName())}, nil
		})
}

func cloneCell(c *rollwavev1.Cell) *rollwavev1.Cell {
	return &rollwavev1.Cell{Name: c.GetName(), Risk: c.GetRisk(), Criticality: c.GetCriticality(), Users: c.GetUsers()}
}

func (o *operatorService) DeleteCell(ctx context.Context, req *rollwavev1.DeleteCellRequest) (*rollwavev1.DeleteCellResponse, error) {
	if req.GetName() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "cell name must not be empty")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.DeleteCell,
		func(ctx context.Context, req *rollwavev1.DeleteCellRequest) (*rollwavev1.DeleteCellResponse, error) {
			if o.s.fsm.State().Cell(req.GetName()) == nil {
				return nil, errorf(raftfsm.ErrNotFound, "no cell named %q", req.GetName())
			}
			err := o.s.applyErr(raftfsm.DeleteCell, &rollwavev1.DeleteCellCommand{TimeUnixNano: time.Now().UnixNano(), Name: req.GetName(), Actor: actorOf(ctx, req.GetActor())})
			if err != nil {
				return nil, err
			}
			return &rollwavev1.DeleteCellResponse{}, nil
		})
}
