package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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

// sessionLoop keeps one session with the leader open: it picks a
// coordinator from gossip, follows redirects, and waits between attempts
// with capped exponential backoff and full jitter.
func (a *Agent) sessionLoop(ctx context.Context) {
	b := backoff.New(a.cfg.ReconnectMin, a.cfg.ReconnectMax)
	target := ""
	redirects := 0
	// A server announcing in gossip that it leads ends any backoff wait at
	// once: after a failover the agents come back with the new leader, not
	// when their (grown) backoff runs out.
	events, unsubscribe := a.pool.Subscribe(16)
	defer unsubscribe()
	for ctx.Err() == nil {
		if target == "" {
			target = a.pickCoordinator()
		}
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
			if time.Since(started) > 10*time.Second {
				b.Reset() // a session that lived is not a failure streak
			}
			a.log.Info("session ended; reconnecting", "coordinator", target, "error", err)
		}
		target, redirects = "", 0
		wait := time.NewTimer(b.Next())
	waiting:
		for {
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
				break waiting
			case ev, ok := <-events:
				if !ok {
					events = nil // the pool is shutting down; keep the timer
					continue
				}
				m := ev.Member
				if m.Meta.Role == gossip.RoleServer && m.Meta.Leader && m.Status == gossip.StatusAlive && m.Meta.GRPCAddr != "" {
					a.log.Debug("a leader announced itself; reconnecting now", "leader", m.Meta.NodeID)
					target = m.Meta.GRPCAddr
					wait.Stop()
					break waiting
				}
			}
		}
	}
}

// rejoin contacts the join addresses again (bounded, best effort).
func (a *Agent) rejoin(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := a.pool.Join(jctx, a.cfg.Join); err != nil {
		a.log.Debug("gossip rejoin after reconnect", "error", err)
	}
}

// pickCoordinator prefers the server gossip says leads, else any alive
// server.
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
	// push/pull sync.
	go a.rejoin(ctx)
	a.log.Info("session open", "coordinator", addr, "leader", a.LeaderID())
	a.requestPageRelease()

	sendErr := make(chan error, 1)
	go func() { sendErr <- a.sendLoop(sctx, stream) }()
	recvErr := make(chan error, 1)
	go func() { recvErr <- a.recvLoop(sctx, stream) }()
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

// sendLoop sends heartbeats on the interval and progress as it comes.
func (a *Agent) sendLoop(ctx context.Context, stream sessionStream) error {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	var seq uint64
	sendProgress := func() error {
		ps := a.progress.take()
		for i, p := range ps {
			if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Progress{Progress: p}}); err != nil {
				a.progress.requeue(ps[i:])
				return err
			}
		}
		return nil
	}
	if err := sendProgress(); err != nil {
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
		case <-t.C:
			seq++
			hb := a.heartbeat(ctx, seq)
			if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: hb}}); err != nil {
				return err
			}
		}
	}
}

// recvLoop handles the leader's messages.
func (a *Agent) recvLoop(ctx context.Context, stream sessionStream) error {
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
			*rollwavev1.CoordinatorMessage_Finalize, *rollwavev1.CoordinatorMessage_Verified:
			if err := a.Deliver(m); err != nil {
				a.log.Warn("order from the leader ignored", "error", err)
			}
		case *rollwavev1.CoordinatorMessage_Redirect:
			return &errRedirect{leaderID: msg.Redirect.GetLeaderId(), addr: msg.Redirect.GetLeaderAddress()}
		default:
			a.log.Debug("unexpected message from leader", "type", fmt.Sprintf("%T", m.GetMsg()))
		}
	}
}
