package coordinator

import (
	"context"
	"sync"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// freezePush keeps every connected agent's freeze calendar current: a
// session gets the calendar right after its Welcome, and a leader
// goroutine sends it to every session whenever the windows change. mu
// orders the two, so a session never ends up with an older calendar
// than the state's: the opening send and each broadcast read the state
// and queue their message under it.
type freezePush struct {
	mu sync.Mutex
	// ready are the sessions that got their opening calendar; only they
	// get broadcasts (nothing may reach an agent before its Welcome).
	ready map[*agentSession]bool
}

func calendarMessage(ws []*rollwavev1.FreezeWindow) *rollwavev1.CoordinatorMessage {
	return &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_FreezeCalendar{
		FreezeCalendar: &rollwavev1.FreezeCalendar{Windows: ws},
	}}
}

// open sends the session its calendar (call it after the Welcome) and
// enrols it for changes; the returned func removes it.
func (s *Server) openCalendar(sess *agentSession) func() {
	p := &s.freezePush
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready == nil {
		p.ready = map[*agentSession]bool{}
	}
	sess.Send(calendarMessage(s.fsm.State().Freezes()))
	p.ready[sess] = true
	return func() {
		p.mu.Lock()
		delete(p.ready, sess)
		p.mu.Unlock()
	}
}

// pushCalendars is a leader goroutine: each time the freeze windows
// change it sends the new calendar to every session. Send never blocks (a
// session that cannot take it is closed and reconnects, getting the
// calendar again on open).
func (s *Server) pushCalendars(ctx context.Context) {
	p := &s.freezePush
	for {
		ws, watch := s.fsm.State().FreezesWatch()
		p.mu.Lock()
		msg := calendarMessage(ws)
		for sess := range p.ready {
			sess.Send(msg)
		}
		p.mu.Unlock()
		if !watch.Wait(ctx) {
			return
		}
	}
}
