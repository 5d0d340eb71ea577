package coordinator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/dispatch"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const (
	// helloTimeout bounds how long a new stream may stay silent.
	helloTimeout = 10 * time.Second
	// sessionSendBuffer is how many orders/acks may wait for a slow agent
	// before its session is dropped (it reconnects and resyncs).
	sessionSendBuffer = 128
	// contactPersistEvery limits how often a host's last contact time is
	// written to raft; the leader keeps the exact time in memory.
	contactPersistEvery = 30 * time.Second
	// defaultHeartbeat is told to agents in Welcome.
	defaultHeartbeat = 2 * time.Second
)

// agentService implements rollwavev1.AgentServiceServer on every server; only
// the leader keeps sessions, followers redirect.
type agentService struct {
	rollwavev1.UnimplementedAgentServiceServer
	s *Server
}

func newAgentService(s *Server) (*agentService, error) {
	s.agents = newAgentRegistry()
	d, err := dispatch.New(dispatch.Config{Raft: dispatchRaft{s}, Agents: s.agents, Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.dispatch = d
	s.AddLeaderHook(func(ctx context.Context, leader bool) {
		if leader {
			goLeader(ctx, func() { d.Writer().Run(ctx) })
			goLeader(ctx, func() { s.pushCalendars(ctx) })
			return
		}
		// Sessions belong to a leader; agents reconnect and are redirected.
		s.agents.closeAll(status.Error(codes.Unavailable, "leadership lost"))
	})
	return &agentService{s: s}, nil
}

// agentSession is one connected agent.
//
// Its stream has one goroutine of rollwave's: the handler, which receives.
// Messages to the agent are queued and sent by a goroutine that runs only
// while the queue is not empty, so that sending (acks, orders) never waits
// on the agent's next message and an idle session costs no goroutine
// stack for sending (docs/performance.md, "Coordinator memory"). The
// session is ended from outside (replaced, silent, leadership lost) by
// cancelling the stream's context, which ends the handler's Recv; the
// context is made cancellable by sessionTap.
type agentSession struct {
	hostID string
	done   chan struct{}
	once   sync.Once
	err    error
	// cancel ends the stream's context (sessionTap); nil in tests that
	// build a session by hand.
	cancel context.CancelCauseFunc

	// sendMu guards the send queue; stream is where drain sends.
	sendMu  sync.Mutex
	queue   []*rollwavev1.CoordinatorMessage
	sending bool          // a drain goroutine runs
	drained chan struct{} // closed by the drain goroutine that sees the session closed; nil while none runs
	stream  grpc.ServerStreamingServer[rollwavev1.CoordinatorMessage]

	mu            sync.Mutex
	lastContact   time.Time
	gap           time.Duration
	lastPersisted time.Time
	heartbeat     *rollwavev1.Heartbeat

	// logs are the log requests waiting for chunks (hostlogs.go).
	logMu sync.Mutex
	logs  map[string]*logWaiter
}

func (a *agentSession) close(err error) {
	a.once.Do(func() {
		a.err = err
		close(a.done)
		if a.cancel != nil {
			a.cancel(err)
		}
	})
}

// Send queues a message for the agent without blocking. A full queue means
// the agent is not keeping up: its session is closed so it reconnects.
func (a *agentSession) Send(m *rollwavev1.CoordinatorMessage) bool {
	a.sendMu.Lock()
	select {
	case <-a.done:
		a.sendMu.Unlock()
		return false
	default:
	}
	if len(a.queue) >= sessionSendBuffer {
		a.sendMu.Unlock()
		a.close(status.Error(codes.ResourceExhausted, "agent is not reading its session; reconnect"))
		return false
	}
	a.queue = append(a.queue, m)
	start := !a.sending && a.stream != nil
	if start {
		a.sending = true
	}
	a.sendMu.Unlock()
	if start {
		go a.drain()
	}
	return true
}

// drain sends the queued messages in order and exits when the queue is
// empty or the session has ended.
func (a *agentSession) drain() {
	for {
		a.sendMu.Lock()
		ended := false
		select {
		case <-a.done:
			ended = true
		default:
		}
		st := a.stream // nil once stopSending ran: the handler has returned
		if ended || st == nil || len(a.queue) == 0 {
			a.sending = false
			if a.drained != nil { // stopSending waits for this
				close(a.drained)
				a.drained = nil
			}
			if ended || st == nil {
				a.queue = nil
			} else if cap(a.queue) > 8 {
				a.queue = nil // an order burst's backing array goes with it
			} else {
				a.queue = a.queue[:0]
			}
			a.sendMu.Unlock()
			return
		}
		m := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.sendMu.Unlock()
		if err := st.Send(m); err != nil {
			a.close(err)
		}
	}
}

// startSending lets queued and future messages go out on stream.
func (a *agentSession) startSending(stream grpc.ServerStreamingServer[rollwavev1.CoordinatorMessage]) {
	a.sendMu.Lock()
	a.stream = stream
	start := !a.sending && len(a.queue) > 0
	if start {
		a.sending = true
	}
	a.sendMu.Unlock()
	if start {
		go a.drain()
	}
}

// stopSending closes the session and waits until no drain goroutine uses
// the stream any more: the stream must not be written once its handler
// has returned. A drain blocked in Send (the agent's flow-control window
// is full) is released by the stream's context, which close cancels.
func (a *agentSession) stopSending(err error) {
	a.close(err)
	a.sendMu.Lock()
	var wait chan struct{}
	if a.sending {
		if a.drained == nil {
			a.drained = make(chan struct{})
		}
		wait = a.drained
	}
	a.stream = nil
	a.sendMu.Unlock()
	if wait != nil {
		<-wait
	}
}

// agentRegistry tracks the sessions of connected agents.
type agentRegistry struct {
	mu       sync.Mutex
	sessions map[string]*agentSession
	// ended holds the last contact of each host whose session ended on
	// this leader: raft's copy may be up to contactPersistEvery older.
	// One entry per host at most; it goes when the host reconnects.
	ended map[string]time.Time
}

func newAgentRegistry() *agentRegistry {
	return &agentRegistry{sessions: map[string]*agentSession{}, ended: map[string]time.Time{}}
}

func (r *agentRegistry) add(a *agentSession) {
	r.mu.Lock()
	old := r.sessions[a.hostID]
	r.sessions[a.hostID] = a
	delete(r.ended, a.hostID)
	r.mu.Unlock()
	if old != nil {
		old.close(status.Error(codes.AlreadyExists, "a newer session for this host replaced this one"))
	}
}

func (r *agentRegistry) remove(a *agentSession) {
	r.mu.Lock()
	if r.sessions[a.hostID] == a {
		delete(r.sessions, a.hostID)
		a.mu.Lock()
		r.ended[a.hostID] = a.lastContact
		a.mu.Unlock()
	}
	r.mu.Unlock()
}

// lastContact returns when this leader last heard from the host: now, for
// a connected host, the last message of its session; for a host whose
// session ended here, the last message of that session. ok is false for a
// host this server has had no session with since it became leader.
func (r *agentRegistry) lastContact(host string) (time.Time, bool) {
	r.mu.Lock()
	sess, at, ok := r.sessions[host], time.Time{}, false
	if sess == nil {
		at, ok = r.ended[host]
	}
	r.mu.Unlock()
	if sess != nil {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.lastContact, true
	}
	return at, ok
}

func (r *agentRegistry) get(host string) *agentSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[host]
}

func (r *agentRegistry) connected(host string) bool { return r.get(host) != nil }

// Send queues a message on the host's session; false when the host is not
// connected (it gets its orders on reconnect). It is dispatch.Agents.
func (r *agentRegistry) Send(host string, m *rollwavev1.CoordinatorMessage) bool {
	sess := r.get(host)
	if sess == nil {
		return false
	}
	return sess.Send(m)
}

// watchSilence closes every session that has sent nothing for longer than
// timeout (or five of its agent's own heartbeat intervals, if longer),
// checking every timeout/3, until stop closes: a cut link sends no FIN,
// and without this a dead session would linger until TCP gives up,
// minutes later. One goroutine checks all sessions: a ticker per session
// woke each session's handler every timeout/3 (1,500 wake-ups a second
// at 5,000 agents) to find nothing.
func (r *agentRegistry) watchSilence(timeout time.Duration, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(timeout / 3)
	defer t.Stop()
	var all []*agentSession
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		all = all[:0]
		for _, a := range r.sessions {
			all = append(all, a)
		}
		r.mu.Unlock()
		now := time.Now()
		for _, a := range all {
			a.mu.Lock()
			quiet := now.Sub(a.lastContact)
			limit := max(timeout, 5*a.gap)
			a.mu.Unlock()
			if quiet > limit {
				log.Warn("agent silent; closing its session", "host", a.hostID, "silent_for", quiet.Round(time.Millisecond))
				a.close(status.Errorf(codes.DeadlineExceeded, "no message from the agent for %s", quiet.Round(time.Second)))
			}
		}
		clear(all) // hold no ended session until the next check
	}
}

func (r *agentRegistry) closeAll(err error) {
	r.mu.Lock()
	all := make([]*agentSession, 0, len(r.sessions))
	for _, a := range r.sessions {
		all = append(all, a)
	}
	r.mu.Unlock()
	for _, a := range all {
		a.close(err)
	}
}

// sessionCancelKey holds, in an agent session's stream context, the
// function that cancels that context (sessionTap).
type sessionCancelKey struct{}

// sessionTap makes the context of every agent session stream cancellable
// by the server: grpc-go gives a handler no way to end its own stream
// while it is blocked in Recv, but Recv (and a Send waiting for flow
// control) ends when the stream's context does, and an InTapHandle may
// replace that context before the stream starts. With it the handler
// receives on its own goroutine and still ends at once when the session
// is closed from elsewhere, with the status it was closed with. It runs
// on the connection's reader goroutine for every new stream and does no
// more than derive a context.
func sessionTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != rollwavev1.AgentService_Session_FullMethodName {
		return ctx, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	return context.WithValue(ctx, sessionCancelKey{}, cancel), nil
}

// errHelloTimeout ends a stream that sent no hello in time.
var errHelloTimeout = status.Errorf(codes.DeadlineExceeded, "no hello within %s", helloTimeout)

// Session runs one agent's stream.
func (g *agentService) Session(stream grpc.BidiStreamingServer[rollwavev1.AgentMessage, rollwavev1.CoordinatorMessage]) error {
	cancel, ok := stream.Context().Value(sessionCancelKey{}).(context.CancelCauseFunc)
	if !ok {
		return status.Error(codes.Internal, "agent session stream started without the server's session tap")
	}
	defer cancel(nil)
	hello := time.AfterFunc(helloTimeout, func() { cancel(errHelloTimeout) })
	first, err := stream.Recv()
	if !hello.Stop() {
		return errHelloTimeout
	}
	if err != nil {
		return err
	}
	return g.session(stream, first, cancel)
}

func (g *agentService) session(stream grpc.BidiStreamingServer[rollwavev1.AgentMessage, rollwavev1.CoordinatorMessage], first *rollwavev1.AgentMessage, cancel context.CancelCauseFunc) error {
	s := g.s
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first message of a session must be a hello")
	}
	if hello.GetHostId() == "" {
		return status.Error(codes.InvalidArgument, "hello.host_id must not be empty")
	}
	if !s.IsLeader() {
		// Never a redirect to an empty address: the agent would dial
		// nowhere until the leader shows up in this server's gossip.
		id, addr, ok := s.leaderAddrForClients()
		if !ok {
			if id == "" {
				return status.Error(codes.Unavailable, "no raft leader is known right now; the cluster may be electing one; retry")
			}
			return status.Errorf(codes.Unavailable, "the leader is %s but this server does not know its address yet; retry, or try another server", id)
		}
		return stream.Send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Redirect{
			Redirect: &rollwavev1.Redirect{LeaderId: id, LeaderAddress: addr},
		}})
	}

	// The truth first: the hello's slot facts and what the agent applied
	// while it had no session (or while another server led, or while
	// every coordinator was down: an isolated revert) are committed to
	// raft before the session is registered. Until then the orchestrator
	// sees the host as not connected, so no decision is taken on the state
	// raft held before (a stale HEALTHY for a host that reverted), and the
	// orders resent below are read from the truth.
	now := time.Now()
	var updates []*rollwavev1.AssignmentUpdate
	for _, ap := range hello.GetApplied() {
		if ap.GetGeneration() > 0 && ap.GetState() != rollwavev1.AssignmentState_ASSIGNMENT_STATE_UNSPECIFIED {
			updates = append(updates, s.dispatch.ProgressUpdates(hello.GetHostId(), &rollwavev1.AssignmentProgress{
				App: ap.GetApp(), Generation: ap.GetGeneration(), State: ap.GetState(), Reason: ap.GetReason(),
				TimeUnixNano: ap.GetTimeUnixNano(), Evidence: dispatch.SlotsEvidence(hello.GetSlots(), ap.GetApp()),
			})...)
		}
	}
	hello.Applied = nil // the session keeps the hello; these are recorded below
	wctx, wcancel := commitContext(stream.Context(), s.cfg.ApplyTimeout)
	err := s.dispatch.Writer().Commit(wctx, &rollwavev1.Host{
		Id: hello.GetHostId(), Cell: hello.GetCell(), Region: hello.GetRegion(), Labels: hello.GetLabels(),
		AgentVersion: hello.GetAgentVersion(), Address: hello.GetAddress(), Apps: hello.GetSlots(),
		LastContactUnixNano: now.UnixNano(),
	}, updates)
	wcancel()
	if err != nil {
		s.log.Warn("could not record an agent's hello; it will reconnect", "host", hello.GetHostId(), "error", err)
		return status.Errorf(codes.Unavailable, "record the host's state from its hello: %v", err)
	}

	sess := &agentSession{
		hostID:      hello.GetHostId(),
		done:        make(chan struct{}),
		cancel:      cancel,
		lastContact: time.Now(),
		// The hello's write above persisted the contact: the first
		// heartbeat need not write it again.
		lastPersisted: now,
	}
	s.agents.add(sess)
	defer s.agents.remove(sess)
	defer sess.stopSending(nil)
	// No per-session logger (s.log.With): it would be kept, with its
	// preformatted attributes, for every connected agent.
	s.log.Info("agent session opened", "host", sess.hostID, "cell", hello.GetCell(), "agent_version", hello.GetAgentVersion(), "applied_reported", len(updates))

	sess.Send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Welcome{
		Welcome: &rollwavev1.Welcome{LeaderId: s.cfg.NodeID, HeartbeatIntervalMs: defaultHeartbeat.Milliseconds()},
	}})
	// The calendar before any order, so the agent judges orders by it.
	defer s.openCalendar(sess)()
	s.dispatch.ResendOrders(sess.hostID, sess.Send)
	sess.startSending(stream)

	// A silent session (a cut link sends no FIN) is closed by the
	// registry's watchSilence; a closed session's Recv ends with its
	// stream's context.
	err = g.recvLoop(stream, sess, hello)
	select {
	case <-sess.done:
		return sess.err
	case <-s.shutdownCh:
		return status.Error(codes.Unavailable, "server shutting down")
	default:
	}
	if errors.Is(err, io.EOF) {
		s.log.Info("agent closed its session", "host", sess.hostID)
		return nil
	}
	return err
}

func (g *agentService) recvLoop(stream grpc.BidiStreamingServer[rollwavev1.AgentMessage, rollwavev1.CoordinatorMessage], sess *agentSession, hello *rollwavev1.Hello) error {
	s := g.s
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		select {
		case <-sess.done:
			return nil // the caller returns the reason it was closed
		default:
		}
		now := time.Now()
		switch msg := m.GetMsg().(type) {
		case *rollwavev1.AgentMessage_Heartbeat:
			hb := msg.Heartbeat
			s.observeHeartbeat(sess.hostID, hb, now)
			// The raw samples and request stats have been copied where
			// they are needed (the sample store, while a gate reads them)
			// and slot facts go to the hello's copy below; the session
			// keeps the rest (gates read host and slot metrics), not a
			// heartbeat's worth of samples and histograms per connected
			// host.
			facts := hb.GetFacts()
			hb.Samples, hb.Requests, hb.Facts = nil, nil, nil
			sess.mu.Lock()
			// The agent's own heartbeat interval, as observed: a host
			// configured with slow heartbeats is not called silent.
			sess.gap = now.Sub(sess.lastContact)
			sess.lastContact = now
			sess.heartbeat = hb
			persist := now.Sub(sess.lastPersisted) >= contactPersistEvery
			if persist {
				sess.lastPersisted = now
			}
			sess.mu.Unlock()
			changed := len(facts) > 0 && !protoSlicesEqual(facts, hello.GetSlots())
			if changed || persist {
				if changed {
					hello.Slots = facts
				}
				h := &rollwavev1.Host{
					Id: hello.GetHostId(), Cell: hello.GetCell(), Region: hello.GetRegion(), Labels: hello.GetLabels(),
					AgentVersion: hello.GetAgentVersion(), Address: hello.GetAddress(), Apps: hello.GetSlots(),
					LastContactUnixNano: now.UnixNano(),
				}
				if changed {
					s.dispatch.Writer().UpsertHost(h)
				} else {
					s.dispatch.Writer().PersistContact(h)
				}
			}
			sess.Send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Ack{
				Ack: &rollwavev1.HeartbeatAck{Seq: hb.GetSeq(), LeaderId: s.cfg.NodeID, TimeUnixNano: now.UnixNano()},
			}})
		case *rollwavev1.AgentMessage_Progress:
			s.dispatch.RecordProgress(sess.hostID, msg.Progress)
		case *rollwavev1.AgentMessage_LogChunk:
			sess.deliverLog(msg.LogChunk)
		case *rollwavev1.AgentMessage_Rehearsal:
			if s.rollout != nil {
				s.rollout.ObserveRehearsal(sess.hostID, msg.Rehearsal)
			}
		case *rollwavev1.AgentMessage_Hello:
			return status.Error(codes.InvalidArgument, "hello may only be the first message of a session")
		default:
			return status.Error(codes.InvalidArgument, "empty or unknown agent message")
		}
	}
}

// commitContext is the context of the hello's commit: it ends after
// timeout or when the stream does, like context.WithTimeout(stream,
// timeout), but is not registered as a child of the stream's context. A
// child registers in its parent's map of children, which Go allocates on
// the first child and keeps, empty, once the child is gone: for the rest
// of the session, ~0.2 KiB per connected agent on the leader
// (docs/performance.md, "Coordinator memory"). A goroutine that lives as
// long as the commit cancels it instead.
func commitContext(stream context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stream), timeout)
	go func() {
		select {
		case <-stream.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// protoSlicesEqual reports whether a and b hold equal messages in the
// same order.
func protoSlicesEqual[M proto.Message](a, b []M) bool {
	return slices.EqualFunc(a, b, func(x, y M) bool { return proto.Equal(x, y) })
}
