package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// FleetConfig shapes the simulated agents.
type FleetConfig struct {
	// N agents, spread over Cells cells (cell-0 … cell-{Cells-1}).
	N, Cells int
	// Heartbeat is the heartbeat interval (a real agent: 2 s).
	Heartbeat time.Duration
	// SwapLatency is how long the simulated unit driver takes from
	// STAGING to SWITCHED; SwapJitter adds a uniform random extra.
	SwapLatency, SwapJitter time.Duration
	// ReconnectMin/Max are the session backoff bounds (a real agent:
	// 200 ms … 15 s, capped exponential with full jitter).
	ReconnectMin, ReconnectMax time.Duration
	// Apps are the apps every agent hosts: its heartbeats carry a slot and
	// samples for each, as a real agent's do (empty: one app, "bench").
	// See multiapp.go.
	Apps []string
	// Region is the agents' region in hello and gossip (empty: "global").
	Region string
}

// Delivery is one order as an agent received it.
type Delivery struct {
	Host       string
	App        string
	Generation uint64
	Phase      int32
	At         time.Time
	// HealthyAt is when the simulated swap reported HEALTHY (zero until).
	HealthyAt time.Time
}

// Fleet is N simulated agents speaking AgentService.Session over their own
// gRPC connection each. The unit driver is simulated: an order is answered
// with STAGING at once, SWITCHED after the swap latency, then BAKING and
// HEALTHY; a finalize with FINALIZED; a revert with REVERTED.
type Fleet struct {
	cfg    FleetConfig
	addrs  []string
	hint   atomic.Value // string: leader gRPC address, as gossip would say
	agents []*simAgent
	// views are the gossip members' leader announcements (JoinGossip).
	viewMu sync.Mutex
	views  []*leaderView

	Acks      atomic.Int64 // heartbeat acks received
	Sent      atomic.Int64 // heartbeats sent
	Sessions  atomic.Int64 // sessions opened (welcomed)
	Redirects atomic.Int64
	// Dropped counts progress reports dropped because an agent's queue
	// was full (nonzero means the simulator, not the leader, lost them).
	Dropped   atomic.Int64
	connected atomic.Int64
	hb        hbBody // what every heartbeat carries besides host metrics

	mu          sync.Mutex
	deliveries  []*Delivery
	byKey       map[string]*Delivery
	lastReport  atomic.Int64 // unix nano of the newest progress sent
	lastWelcome atomic.Int64
	// markAt/markWelcome: the first welcome after MarkWelcomes was called.
	markAt, markWelcome atomic.Int64
}

// NewFleet prepares the agents; Run connects them.
func NewFleet(cfg FleetConfig, coordinators []string) *Fleet {
	f := &Fleet{cfg: cfg, addrs: coordinators, byKey: map[string]*Delivery{}, hb: newHBBody(cfg.Apps)}
	f.hint.Store("")
	for i := 0; i < cfg.N; i++ {
		f.agents = append(f.agents, &simAgent{
			f: f, idx: i, id: fmt.Sprintf("sim-%05d", i), cell: fmt.Sprintf("cell-%d", i%max(cfg.Cells, 1)),
			apps: map[string]*appState{}, out: make(chan *rollwavev1.AssignmentProgress, progressQueue(len(cfg.Apps))),
		})
	}
	return f
}

// SetLeaderHint tells agents where the leader is (what gossip's leader
// flag gives a real agent).
func (f *Fleet) SetLeaderHint(addr string) { f.hint.Store(addr) }

// Connected is how many agents have a welcomed session now.
func (f *Fleet) Connected() int { return int(f.connected.Load()) }

// Hosts lists the agents' host ids.
func (f *Fleet) Hosts() []string {
	out := make([]string, len(f.agents))
	for i, a := range f.agents {
		out[i] = a.id
	}
	return out
}

// Deliveries returns (and keeps) every order received so far.
func (f *Fleet) Deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Delivery, len(f.deliveries))
	for i, d := range f.deliveries {
		out[i] = *d
	}
	return out
}

// LastReport is when the newest progress report was sent.
func (f *Fleet) LastReport() time.Time { return time.Unix(0, f.lastReport.Load()) }

// Run starts every agent, ramping up over ramp, and returns at once; ctx
// ends them.
func (f *Fleet) Run(ctx context.Context, ramp time.Duration) {
	step := time.Duration(0)
	if len(f.agents) > 0 {
		step = ramp / time.Duration(len(f.agents))
	}
	go func() {
		for i, a := range f.agents {
			if ctx.Err() != nil {
				return
			}
			go a.run(ctx)
			if step > 0 && i%10 == 9 {
				time.Sleep(step * 10)
			}
		}
	}()
}

type appState struct {
	gen   uint64
	state rollwavev1.AssignmentState
	at    int64
}

type simAgent struct {
	f        *Fleet
	idx      int
	id, cell string
	mu       sync.Mutex
	apps     map[string]*appState
	out      chan *rollwavev1.AssignmentProgress
}

func (a *simAgent) run(ctx context.Context) {
	b := a.f.cfg.ReconnectMin
	target := ""
	redirects := 0
	for ctx.Err() == nil {
		// Like the real agent, which reads gossip events while its session
		// runs and acts on them in its next backoff wait, an announcement
		// from now on ends the wait below.
		var announced <-chan struct{}
		view := a.f.view(a.idx)
		if view != nil {
			announced = view.current()
		}
		if target == "" {
			if h, _ := a.f.hint.Load().(string); h != "" {
				target = h
			} else {
				target = a.f.addrs[rand.IntN(len(a.f.addrs))]
			}
		}
		started := time.Now()
		err := a.session(ctx, target)
		var rd *redirectErr
		if errors.As(err, &rd) && rd.addr != "" && rd.addr != target && redirects < 3 {
			a.f.Redirects.Add(1)
			target, redirects = rd.addr, redirects+1
			continue
		}
		if time.Since(started) > 10*time.Second {
			b = a.f.cfg.ReconnectMin
		}
		target, redirects = "", 0
		wait := time.Duration(rand.Int64N(int64(b))) + time.Millisecond
		if b *= 2; b > a.f.cfg.ReconnectMax {
			b = a.f.cfg.ReconnectMax
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-announced:
			// A leader announced itself in gossip: reconnect to it now.
			timer.Stop()
			target = view.leader()
		}
	}
}

type redirectErr struct{ addr string }

func (e *redirectErr) Error() string { return "redirected to " + e.addr }

func (a *simAgent) applied() []*rollwavev1.AppliedGeneration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*rollwavev1.AppliedGeneration
	for app, s := range a.apps {
		out = append(out, &rollwavev1.AppliedGeneration{App: app, Generation: s.gen, State: s.state, TimeUnixNano: s.at})
	}
	return out
}

func (a *simAgent) session(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithReadBufferSize(8<<10), grpc.WithWriteBufferSize(8<<10),
		// As the real agent dials (internal/agent dialOptions): fixed
		// flow-control windows, no BDP pings.
		grpc.WithStaticStreamWindowSize(1<<20), grpc.WithStaticConnWindowSize(1<<20))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	open := time.AfterFunc(15*time.Second, cancel)
	stream, err := rollwavev1.NewAgentServiceClient(conn).Session(sctx)
	if err != nil {
		return err
	}
	hello := &rollwavev1.Hello{HostId: a.id, Cell: a.cell, Region: a.f.region(), AgentVersion: "fleetsim",
		Address: "127.0.0.1:0", Applied: a.applied()}
	if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	switch m := first.GetMsg().(type) {
	case *rollwavev1.CoordinatorMessage_Redirect:
		return &redirectErr{addr: m.Redirect.GetLeaderAddress()}
	case *rollwavev1.CoordinatorMessage_Welcome:
	default:
		return fmt.Errorf("unexpected first message %T", m)
	}
	if !open.Stop() {
		return errors.New("welcome too late")
	}
	a.f.Sessions.Add(1)
	a.f.lastWelcome.Store(time.Now().UnixNano())
	a.f.firstWelcomeSince(time.Now())
	a.f.connected.Add(1)
	defer a.f.connected.Add(-1)

	errc := make(chan error, 2)
	go func() { errc <- a.sendLoop(sctx, stream) }()
	go func() { errc <- a.recvLoop(sctx, stream) }()
	err = <-errc
	cancel()
	return err
}

type stream = grpc.BidiStreamingClient[rollwavev1.AgentMessage, rollwavev1.CoordinatorMessage]

func (a *simAgent) sendLoop(ctx context.Context, s stream) error {
	hb := a.f.cfg.Heartbeat
	// Spread the fleet's heartbeats over the interval, as independent
	// hosts would.
	first := time.NewTimer(time.Duration(rand.Int64N(int64(hb))))
	defer first.Stop()
	var tick <-chan time.Time
	var t *time.Ticker
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-first.C:
			t = time.NewTicker(hb)
			tick = t.C
			seq++
			if err := a.sendHeartbeat(s, seq); err != nil {
				return err
			}
		case <-tick:
			seq++
			if err := a.sendHeartbeat(s, seq); err != nil {
				return err
			}
		case p := <-a.out:
			if err := s.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Progress{Progress: p}}); err != nil {
				// The hello of the next session carries where we got.
				return err
			}
			a.f.lastReport.Store(time.Now().UnixNano())
		}
	}
}

// sendHeartbeat sends a heartbeat shaped like a real agent's: host
// metrics, each hosted app's slot metrics, and the raw samples since the
// last heartbeat (a real agent samples every check interval; 2 s of 200 ms
// checks is 10 values per metric). About 290 bytes on the wire with one
// app (multiapp.go).
func (a *simAgent) sendHeartbeat(s stream, seq uint64) error {
	a.f.Sent.Add(1)
	return s.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{
		Seq: seq, TimeUnixNano: time.Now().UnixNano(),
		Host:  &rollwavev1.HostMetrics{CpuPercent: 3, MemPercent: 20, Load1: 0.1, DiskPercent: 30},
		Slots: a.f.hb.slots, Samples: a.f.hb.samples,
	}}})
}

func (a *simAgent) recvLoop(ctx context.Context, s stream) error {
	for {
		m, err := s.Recv()
		if err != nil {
			return err
		}
		now := time.Now()
		switch msg := m.GetMsg().(type) {
		case *rollwavev1.CoordinatorMessage_Ack:
			a.f.Acks.Add(1)
		case *rollwavev1.CoordinatorMessage_Assignment:
			as := msg.Assignment.GetAssignment()
			a.f.delivered(&Delivery{Host: a.id, App: as.GetApp(), Generation: as.GetGeneration(), Phase: as.GetPhase(), At: now})
			a.assign(as.GetApp(), as.GetGeneration())
		case *rollwavev1.CoordinatorMessage_Finalize:
			a.advance(msg.Finalize.GetApp(), msg.Finalize.GetGeneration(), rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED)
		case *rollwavev1.CoordinatorMessage_Revert:
			a.advance(msg.Revert.GetApp(), msg.Revert.GetGeneration(), rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED)
		case *rollwavev1.CoordinatorMessage_Redirect:
			return &redirectErr{addr: msg.Redirect.GetLeaderAddress()}
		}
	}
}

// assign runs the simulated swap: idempotent by generation, like a real
// agent (a resent order for a generation already running is ignored).
func (a *simAgent) assign(app string, gen uint64) {
	a.mu.Lock()
	cur := a.apps[app]
	if cur != nil && cur.gen >= gen {
		st := cur.state
		a.mu.Unlock()
		// Already done or under way: report where we are again.
		a.report(app, gen, st)
		return
	}
	a.apps[app] = &appState{gen: gen}
	a.mu.Unlock()
	a.advance(app, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING)
	d := a.f.cfg.SwapLatency
	if j := a.f.cfg.SwapJitter; j > 0 {
		d += time.Duration(rand.Int64N(int64(j)))
	}
	time.AfterFunc(d, func() {
		// A session that ended meanwhile does not stop the swap (a real
		// unit driver does not stop with the session); hello carries it.
		for _, st := range []rollwavev1.AssignmentState{rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY} {
			a.advance(app, gen, st)
		}
	})
}

// advance records a new state for the generation and reports it.
func (a *simAgent) advance(app string, gen uint64, st rollwavev1.AssignmentState) {
	a.mu.Lock()
	cur := a.apps[app]
	if cur == nil {
		cur = &appState{gen: gen}
		a.apps[app] = cur
	}
	if cur.gen != gen {
		a.mu.Unlock()
		return
	}
	cur.state, cur.at = st, time.Now().UnixNano()
	a.mu.Unlock()
	if st == rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY {
		a.f.healthy(a.id, app, gen)
	}
	a.report(app, gen, st)
}

func (a *simAgent) report(app string, gen uint64, st rollwavev1.AssignmentState) {
	if st == rollwavev1.AssignmentState_ASSIGNMENT_STATE_UNSPECIFIED {
		return
	}
	p := &rollwavev1.AssignmentProgress{App: app, Generation: gen, State: st, TimeUnixNano: time.Now().UnixNano()}
	select {
	case a.out <- p:
	default:
		a.f.Dropped.Add(1)
		// Queue full (no session for a while): the next hello carries the
		// latest state, as a real agent's would.
	}
}

func deliveryKey(host, app string, gen uint64) string { return fmt.Sprintf("%s/%s/%d", host, app, gen) }

// delivered records the first receipt of each (host, app, generation).
func (f *Fleet) delivered(d *Delivery) {
	k := deliveryKey(d.Host, d.App, d.Generation)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byKey[k]; ok {
		return
	}
	f.byKey[k] = d
	f.deliveries = append(f.deliveries, d)
}

func (f *Fleet) healthy(host, app string, gen uint64) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if d := f.byKey[deliveryKey(host, app, gen)]; d != nil && d.HealthyAt.IsZero() {
		d.HealthyAt = now
	}
}

// MarkWelcomes starts watching for the first session welcomed from now on.
func (f *Fleet) MarkWelcomes() {
	f.markWelcome.Store(0)
	f.markAt.Store(time.Now().UnixNano())
}

// FirstWelcome is when the first session after MarkWelcomes was welcomed
// (zero if none yet).
func (f *Fleet) FirstWelcome() time.Time {
	if v := f.markWelcome.Load(); v != 0 {
		return time.Unix(0, v)
	}
	return time.Time{}
}

func (f *Fleet) firstWelcomeSince(t time.Time) {
	if at := f.markAt.Load(); at != 0 && t.UnixNano() > at {
		f.markWelcome.CompareAndSwap(0, t.UnixNano())
	}
}
