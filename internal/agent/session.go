package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"google.golang.org/grpc"
	gbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/gossip"
	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// helloAnswerTimeout bounds the wait for Welcome or Redirect;
// connectTimeout bounds one TCP connection attempt.
const (
	helloAnswerTimeout = 10 * time.Second
	connectTimeout     = 5 * time.Second
)

// errRedirect carries a follower's pointer to the leader.
type errRedirect struct{ leaderID, addr string }

func (e *errRedirect) Error() string {
	return fmt.Sprintf("redirected to leader %s at %s", e.leaderID, e.addr)
}

// Finding the coordinators again. While gossip lists a live coordinator
// the agent dials it (the leader if gossip names one) and follows
// redirects, with capped exponential backoff and full jitter between
// attempts. When gossip lists none — every coordinator stopped, or the
// agent started while they were down — it searches, forever: each round
// re-joins gossip from the configured join addresses (memberlist resolves
// DNS names again on every join) and from the coordinators it last knew
// (coordinators.go), and dials the last known gRPC addresses directly, one
// per round. Rounds are spaced by their own backoff, capped at searchMax,
// so that a coordinator that starts again is found within seconds.
const (
	// searchMax caps the wait between two search rounds (full jitter: 1.5 s
	// on average). While every coordinator is down a round costs each of
	// them a refused connection; once they are up, gossip spreads them to
	// the agents that have not found them yet.
	searchMax = 3 * time.Second
	// joinRoundTimeout bounds one gossip re-join (its attempts, spaced by
	// the pool's join backoff, included); the next round starts another.
	joinRoundTimeout = 5 * time.Second
	// spreadPerMember and spreadMax size the random delay before an agent
	// reconnects on a gossip announcement (a leader elected, a coordinator
	// back): about a thousand agents per second, never more than
	// spreadMax, so that 5,000 agents do not open their sessions in the
	// same instant.
	spreadPerMember = time.Millisecond
	spreadMax       = 5 * time.Second
	// sessionLived is how long a session must have lasted for its end not
	// to count as one more failure in the backoff streak.
	sessionLived = 10 * time.Second
)

// sessionLoop keeps one session with the leader open until ctx ends.
func (a *Agent) sessionLoop(ctx context.Context) {
	b := backoff.New(a.cfg.ReconnectMin, a.cfg.ReconnectMax)
	search := backoff.New(a.cfg.ReconnectMin, min(a.cfg.ReconnectMax, searchMax))
	defer a.find.joins.Wait()
	// A server announcing in gossip that it leads (or, while searching,
	// any coordinator coming back) ends a backoff wait early, after a
	// bounded random delay: after a failover or a control-plane restart
	// the agents come back with the coordinators, not when their (grown)
	// backoff runs out, and not all at once.
	events, unsubscribe := a.pool.Subscribe(64)
	defer unsubscribe()
	a.find.joins.Add(1)
	go func() { defer a.find.joins.Done(); a.recordCoordinators(ctx) }()

	target := ""
	redirects := 0
	wasSearching := false
	for ctx.Err() == nil {
		searching := false
		if target == "" {
			target = a.pickCoordinator()
		}
		if target == "" {
			searching = true
			if !wasSearching {
				a.log.Info("no live coordinator in gossip; searching the join addresses and the last known coordinators",
					"join", a.cfg.Join, "known", a.known.gossipAddrs())
			}
			a.rejoinInBackground(ctx)
			target = a.known.nextGRPCAddr()
			if target != "" {
				a.log.Debug("no live coordinator in gossip; dialing a last known one", "coordinator", target)
			}
		}
		if wasSearching && !searching {
			a.log.Info("coordinators found again", "coordinator", target)
		}
		wasSearching = searching
		a.find.searching.Store(searching)
		if target != "" {
			started := time.Now()
			err := a.runSession(ctx, target)
			var rd *errRedirect
			if errors.As(err, &rd) && rd.addr != "" && rd.addr != target && redirects < 3 {
				a.log.Debug("following redirect", "from", target, "to", rd.addr, "leader", rd.leaderID)
				target, redirects = rd.addr, redirects+1
				continue
			}
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > sessionLived {
				b.Reset() // a session that lived is not a failure streak
				search.Reset()
			}
			if searching {
				a.log.Debug("last known coordinator did not take the session", "coordinator", target, "error", err)
			} else {
				a.log.Info("session ended; reconnecting", "coordinator", target, "error", err)
			}
		}
		searching = searching || len(a.pool.Servers()) == 0
		wait := b.Next()
		if searching {
			wait = search.Next()
		}
		target, redirects = a.awaitReconnect(ctx, wait, events, searching, search), 0
	}
}

// awaitReconnect waits d, or less when gossip announces a leader (or,
// while searching, any live coordinator): then it waits a random spread
// instead, if that ends sooner. When the last live coordinator leaves
// gossip meanwhile, the wait becomes a search wait (search.Next()) if that
// ends sooner. It returns the announced leader's gRPC address, or ""
// (pick from gossip).
func (a *Agent) awaitReconnect(ctx context.Context, d time.Duration, events <-chan gossip.Event, searching bool, search *backoff.Backoff) string {
	deadline := time.Now().Add(d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	shorten := func(d time.Duration) bool {
		if at := time.Now().Add(d); at.Before(deadline) {
			deadline = at
			timer.Reset(d)
			return true
		}
		return false
	}
	announced, spread := "", false
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-timer.C:
			return announced
		case ev, ok := <-events:
			if !ok {
				events = nil // the pool is shutting down; keep the timer
				continue
			}
			m := ev.Member
			if m.Meta.Role != gossip.RoleServer {
				continue
			}
			if m.Status != gossip.StatusAlive {
				if !searching && len(a.pool.Servers()) == 0 {
					searching = true
					shorten(search.Next())
				}
				continue
			}
			leader := m.Meta.Leader && m.Meta.GRPCAddr != ""
			if leader {
				announced = m.Meta.GRPCAddr
			}
			if spread || !(leader || searching) {
				continue
			}
			spread = true
			if delay := a.reconnectSpread(); shorten(delay) {
				a.log.Debug("a coordinator announced itself; reconnecting soon", "coordinator", m.Meta.NodeID, "leader", leader, "in", delay)
			}
		}
	}
}

// reconnectSpread is a random delay in [1 ms, bound], bound growing with
// the pool's size (spreadPerMember each) between ReconnectMin and
// min(spreadMax, ReconnectMax).
func (a *Agent) reconnectSpread() time.Duration {
	bound := time.Duration(len(a.pool.Members())) * spreadPerMember
	bound = min(max(bound, a.cfg.ReconnectMin), spreadMax, a.cfg.ReconnectMax)
	return time.Duration(rand.Int64N(int64(bound))) + time.Millisecond
}

// recordCoordinators keeps the book of known coordinators up to date with
// what gossip says, until ctx ends.
func (a *Agent) recordCoordinators(ctx context.Context) {
	events, unsubscribe := a.pool.Subscribe(64)
	defer unsubscribe()
	a.known.observe(a.pool.Servers())
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Member.Meta.Role == gossip.RoleServer || ev.Missed > 0 {
				a.known.observe(a.pool.Servers())
			}
		}
	}
}

// rejoinInBackground starts one gossip re-join unless one is running.
func (a *Agent) rejoinInBackground(ctx context.Context) {
	if !a.find.joining.CompareAndSwap(false, true) {
		return
	}
	a.find.joins.Add(1)
	go func() {
		defer a.find.joins.Done()
		defer a.find.joining.Store(false)
		a.rejoin(ctx)
	}()
}

// rejoin contacts the join addresses and the last known coordinators
// again (bounded, best effort).
func (a *Agent) rejoin(ctx context.Context) {
	addrs := slices.Clone(a.cfg.Join)
	for _, g := range a.known.gossipAddrs() {
		if !slices.Contains(addrs, g) {
			addrs = append(addrs, g)
		}
	}
	jctx, cancel := context.WithTimeout(ctx, joinRoundTimeout)
	defer cancel()
	n, err := a.pool.Join(jctx, addrs)
	if err != nil {
		a.log.Debug("gossip rejoin", "addresses", addrs, "error", err)
		return
	}
	a.log.Debug("gossip rejoined", "reached", n)
}

// pickCoordinator prefers the server gossip says leads, else any alive
// server; "" when gossip lists none.
func (a *Agent) pickCoordinator() string {
	if m, ok := a.pool.Leader(); ok && m.Meta.GRPCAddr != "" {
		return m.Meta.GRPCAddr
	}
	servers := a.pool.Servers()
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	for _, s := range servers {
		if s.Meta.GRPCAddr != "" {
			return s.Meta.GRPCAddr
		}
	}
	return ""
}

// flowWindow is the session's fixed HTTP/2 flow-control window (dialOptions).
const flowWindow = 1 << 20

func (a *Agent) dialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if a.tls != nil {
		tc, err := a.tls.ClientTLSConfig(tlsutil.RoleAgent)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// A coordinator that does not answer (a cut link drops packets, it
		// does not refuse) must not hold the agent for grpc's default 20 s.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: gbackoff.DefaultConfig, MinConnectTimeout: connectTimeout}),
		// Fixed flow-control windows: grpc-go's dynamic window (BDP
		// estimation) answers every heartbeat ack and order with a
		// WINDOW_UPDATE and a PING the coordinator must read and ack;
		// at 10,000 agents that is ~5,000 needless pings a second on
		// the leader. 1 MiB is far above any message to an agent.
		grpc.WithStaticStreamWindowSize(flowWindow), grpc.WithStaticConnWindowSize(flowWindow),
	}
	if d := a.cfg.DialContext; d != nil {
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d(ctx, addr) }))
	}
	return opts, nil
}

// runSession runs one session until it breaks. It returns *errRedirect
// when a follower pointed elsewhere.
func (a *Agent) runSession(ctx context.Context, addr string) error {
	opts, err := a.dialOptions()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Until the leader has welcomed us, the whole exchange is bounded.
	openTimer := time.AfterFunc(connectTimeout+helloAnswerTimeout, cancel)
	defer openTimer.Stop()
	stream, err := rollwavev1.NewAgentServiceClient(conn).Session(sctx)
	if err != nil {
		return fmt.Errorf("open session with %s: %w", addr, err)
	}
	hello := &rollwavev1.Hello{
		HostId: a.cfg.NodeName, Cell: a.cfg.Cell, Region: a.cfg.Region, Labels: a.cfg.Labels,
		AgentVersion: a.cfg.Version, Address: a.pool.LocalAddr(),
		Slots: a.mgr.Facts(), Applied: a.mgr.Applied(),
	}
	if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello to %s: %w", addr, err)
	}
	first, err := recvWithin(sctx, stream, helloAnswerTimeout)
	if err != nil {
		return fmt.Errorf("await welcome from %s: %w", addr, err)
	}
	switch m := first.GetMsg().(type) {
	case *rollwavev1.CoordinatorMessage_Redirect:
		return &errRedirect{leaderID: m.Redirect.GetLeaderId(), addr: m.Redirect.GetLeaderAddress()}
	case *rollwavev1.CoordinatorMessage_Welcome:
		a.leaderID.Store(m.Welcome.GetLeaderId())
	default:
		return fmt.Errorf("coordinator %s answered hello with %T", addr, first.GetMsg())
	}
	if !openTimer.Stop() {
		return fmt.Errorf("session with %s: welcome came too late", addr)
	}
	a.markAck()
	a.connected.Store(true)
	defer a.connected.Store(false)
	// After a cut the others may have declared this host dead in gossip; a
	// fresh join makes it alive again at once instead of at the next
	// push/pull sync. (After a session opened by a direct dial, it also
	// joins this agent's gossip to the coordinators' again.)
	a.rejoinInBackground(ctx)
	a.log.Info("session open", "coordinator", addr, "leader", a.LeaderID())

	// Log chunks (logs.go) reach the stream through sendLoop: a gRPC
	// stream takes one sender at a time. Log streams end with the session.
	logOut := make(chan *rollwavev1.AgentMessage, logQueue)
	sendLog := func(ctx context.Context, m *rollwavev1.AgentMessage) error {
		select {
		case logOut <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer a.logs.wait()
	sendErr := make(chan error, 1)
	go func() { sendErr <- a.sendLoop(sctx, stream, logOut) }()
	recvErr := make(chan error, 1)
	go func() { recvErr <- a.recvLoop(sctx, stream, sendLog) }()
	// A leader behind a cut link sends no FIN: when acks stop coming, give
	// the session up and look for a leader again.
	silentAfter := max(5*a.cfg.HeartbeatInterval, 2*time.Second)
	check := time.NewTicker(silentAfter / 4)
	defer check.Stop()
	for err == nil {
		select {
		case err = <-sendErr:
		case err = <-recvErr:
		case <-ctx.Done():
			err = ctx.Err()
		case <-check.C:
			if quiet := a.sinceAck(); quiet > silentAfter {
				err = fmt.Errorf("no heartbeat ack from the leader for %s", quiet.Round(time.Millisecond))
			}
		}
	}
	cancel()
	return err
}

type sessionStream = grpc.BidiStreamingClient[rollwavev1.AgentMessage, rollwavev1.CoordinatorMessage]

func recvWithin(ctx context.Context, stream sessionStream, d time.Duration) (*rollwavev1.CoordinatorMessage, error) {
	type res struct {
		m   *rollwavev1.CoordinatorMessage
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := stream.Recv()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no answer within %s", d)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// logQueue is how many log chunks may wait for the stream; a log stream
// waits when it is full.
const logQueue = 16

// sendLoop sends heartbeats on the interval, progress as it comes, and
// the log chunks of logOut.
func (a *Agent) sendLoop(ctx context.Context, stream sessionStream, logOut <-chan *rollwavev1.AgentMessage) error {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	var seq uint64
	sendProgress := func() error {
		return a.progress.sendAll(stream.Send, func(p *rollwavev1.AssignmentProgress) *rollwavev1.AgentMessage {
			return &rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Progress{Progress: p}}
		})
	}
	sendRehearsals := func() error {
		return a.rehearsals.sendAll(stream.Send, func(r *rollwavev1.RehearsalResult) *rollwavev1.AgentMessage {
			return &rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Rehearsal{Rehearsal: r}}
		})
	}
	if err := sendProgress(); err != nil {
		return err
	}
	if err := sendRehearsals(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.progress.ready:
			if err := sendProgress(); err != nil {
				return err
			}
		case <-a.rehearsals.ready:
			if err := sendRehearsals(); err != nil {
				return err
			}
		case m := <-logOut:
			if err := stream.Send(m); err != nil {
				return err
			}
		case <-t.C:
			seq++
			hb := a.heartbeat(ctx, seq)
			if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: hb}}); err != nil {
				return err
			}
		}
	}
}

// recvLoop handles the leader's messages; log requests answer through
// sendLog.
func (a *Agent) recvLoop(ctx context.Context, stream sessionStream, sendLog sendFunc) error {
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("leader closed the session")
		}
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *rollwavev1.CoordinatorMessage_Ack:
			a.markAck()
		case *rollwavev1.CoordinatorMessage_Assignment, *rollwavev1.CoordinatorMessage_Revert,
			*rollwavev1.CoordinatorMessage_Finalize, *rollwavev1.CoordinatorMessage_Verified,
			*rollwavev1.CoordinatorMessage_FreezeCalendar,
			*rollwavev1.CoordinatorMessage_Rehearse:
			if err := a.Deliver(m); err != nil {
				a.log.Warn("order from the leader ignored", "error", err)
			}
		case *rollwavev1.CoordinatorMessage_LogRequest:
			a.logs.start(ctx, msg.LogRequest, sendLog)
		case *rollwavev1.CoordinatorMessage_LogCancel:
			a.logs.cancel(msg.LogCancel.GetRequestId())
		case *rollwavev1.CoordinatorMessage_Redirect:
			return &errRedirect{leaderID: msg.Redirect.GetLeaderId(), addr: msg.Redirect.GetLeaderAddress()}
		default:
			a.log.Debug("unexpected message from leader", "type", fmt.Sprintf("%T", m.GetMsg()))
		}
	}
}
