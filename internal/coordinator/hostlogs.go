package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// HostLogs (`rollwave logs HOST APP`): the leader holds the agents'
// sessions, so it sends the host a LogRequest on its session and relays
// the LogChunks it answers with; a follower forwards the whole stream to
// the leader. The agent bounds what it sends (lines, line size, rate,
// concurrent streams, a follow's duration); the leader bounds how long it
// waits for the first answer and how much it buffers for a slow client.
const (
	// hostLogsDefaultLines is what lines = 0 asks for.
	hostLogsDefaultLines = 200
	// hostLogsAnswerTimeout bounds the wait for the agent's first chunk.
	hostLogsAnswerTimeout = 15 * time.Second
	// hostLogsMaxDuration ends a stream the agent failed to end (it ends
	// a follow after an hour itself).
	hostLogsMaxDuration = time.Hour + time.Minute
	// hostLogsBuffer is how many chunks (each at most 256 lines or 256
	// KiB, see the agent's logLimits) may wait for a slow client; the lines
	// of chunks beyond it are dropped and counted in a notice line.
	hostLogsBuffer = 16
	// hostLogsMaxStreams caps the log streams one leader relays at once
	// (each agent also serves at most 4).
	hostLogsMaxStreams = 64
	// maxNameInError bounds how much of a client's string an error quotes.
	maxNameInError = 80
)

// logWaiter receives the chunks of one log request on a session.
type logWaiter struct {
	ch chan *rollwavev1.LogChunk
	// ended is closed when the final chunk came while ch was full; final
	// holds it. dropped counts lines of chunks ch had no room for.
	mu      sync.Mutex
	dropped int
	final   *rollwavev1.LogChunk
	ended   chan struct{}
}

// addLogWaiter registers a request id on the session.
func (a *agentSession) addLogWaiter(id string) *logWaiter {
	w := &logWaiter{ch: make(chan *rollwavev1.LogChunk, hostLogsBuffer), ended: make(chan struct{})}
	a.logMu.Lock()
	if a.logs == nil {
		a.logs = map[string]*logWaiter{}
	}
	a.logs[id] = w
	a.logMu.Unlock()
	return w
}

func (a *agentSession) removeLogWaiter(id string) {
	a.logMu.Lock()
	delete(a.logs, id)
	a.logMu.Unlock()
}

// deliverLog hands a chunk to its request without blocking the session's
// receive loop. Chunks of unknown requests (the client left) are dropped.
func (a *agentSession) deliverLog(c *rollwavev1.LogChunk) {
	a.logMu.Lock()
	w := a.logs[c.GetRequestId()]
	a.logMu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.ch <- c:
		return
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropped += len(c.GetLines())
	if c.GetEof() && w.final == nil {
		w.final = c
		close(w.ended)
	}
}

// takeDropped returns and resets the count of dropped lines.
func (w *logWaiter) takeDropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.dropped
	w.dropped = 0
	return n
}

// checkHostLogsRequest validates what the client sent.
func checkHostLogsRequest(req *rollwavev1.HostLogsRequest) error {
	switch {
	case req.GetHost() == "":
		return errorf(raftfsm.ErrInvalid, "host logs: the host is required; see 'rollwave hosts'")
	case req.GetApp() == "":
		return errorf(raftfsm.ErrInvalid, "host logs: the app is required")
	case req.GetLines() > slot.MaxLogLines:
		return errorf(raftfsm.ErrInvalid, "host logs: lines %d is over the limit of %d", req.GetLines(), slot.MaxLogLines)
	}
	switch req.GetSlot() {
	case rollwavev1.Slot_SLOT_UNSPECIFIED, rollwavev1.Slot_SLOT_BLUE, rollwavev1.Slot_SLOT_GREEN:
	default:
		return errorf(raftfsm.ErrInvalid, "host logs: slot %d: want blue, green or unspecified (the active slot)", req.GetSlot())
	}
	return nil
}

// HostLogs streams a slot's log from a host.
func (o *operatorService) HostLogs(req *rollwavev1.HostLogsRequest, stream grpc.ServerStreamingServer[rollwavev1.HostLogsResponse]) error {
	if err := checkHostLogsRequest(req); err != nil {
		return err
	}
	client, fctx, isLocal, err := o.s.leaderClient(stream.Context())
	if err != nil {
		return err
	}
	if !isLocal {
		up, err := client.HostLogs(fctx, req)
		if err != nil {
			return fromRemote(err)
		}
		for {
			m, err := up.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fromRemote(err)
			}
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
	return o.s.hostLogs(stream.Context(), req, stream.Send)
}

// hostLogs runs a log request on the host's session (this server leads).
func (s *Server) hostLogs(ctx context.Context, req *rollwavev1.HostLogsRequest, send func(*rollwavev1.HostLogsResponse) error) error {
	host, app := req.GetHost(), req.GetApp()
	h := s.fsm.State().Host(host)
	if h == nil {
		return errorf(raftfsm.ErrNotFound, "no host %.*q; see 'rollwave hosts'", maxNameInError, host)
	}
	var apps []string
	for _, f := range h.GetApps() {
		apps = append(apps, f.GetApp())
	}
	if !slices.Contains(apps, app) {
		has := "no apps"
		if len(apps) > 0 {
			has = "apps " + strings.Join(apps, ", ")
		}
		return errorf(raftfsm.ErrNotFound, "app %.*q is not on host %s (it has %s)", maxNameInError, app, host, has)
	}
	if n := s.hostLogStreams.Add(1); n > hostLogsMaxStreams {
		s.hostLogStreams.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "the leader already relays %d log streams, its limit; try again when one ends", hostLogsMaxStreams)
	}
	defer s.hostLogStreams.Add(-1)
	sess := s.agents.get(host)
	if sess == nil {
		return status.Errorf(codes.Unavailable, "host %s has no session with the leader (it is down, cut off or reconnecting); try again when 'rollwave hosts' shows it connected", host)
	}
	lines := req.GetLines()
	if lines == 0 {
		lines = hostLogsDefaultLines
	}
	id, err := newLogRequestID()
	if err != nil {
		return status.Errorf(codes.Internal, "make a request id: %v", err)
	}
	w := sess.addLogWaiter(id)
	defer sess.removeLogWaiter(id)
	if !sess.Send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_LogRequest{LogRequest: &rollwavev1.LogRequest{
		RequestId: id, App: app, Slot: req.GetSlot(), Lines: lines, Follow: req.GetFollow(),
	}}}) {
		return status.Errorf(codes.Unavailable, "host %s: its session closed before the log request could be sent; try again", host)
	}
	done := false
	defer func() {
		if !done { // the client left, or the stream failed: stop the agent's side
			sess.Send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_LogCancel{LogCancel: &rollwavev1.LogCancel{RequestId: id}}})
		}
	}()
	s.log.Info("host logs", "host", host, "app", app, "slot", req.GetSlot(), "lines", lines, "follow", req.GetFollow(), "request_id", id)

	answer := time.NewTimer(hostLogsAnswerTimeout)
	defer answer.Stop()
	limit := time.NewTimer(hostLogsMaxDuration)
	defer limit.Stop()
	relay := func(c *rollwavev1.LogChunk) (bool, error) {
		answer.Stop()
		if c.GetError() != "" || (c.GetCode() != 0 && c.GetEof()) {
			done = true
			return true, agentLogError(c)
		}
		resp := &rollwavev1.HostLogsResponse{Lines: c.GetLines(), Slot: c.GetSlot(), Version: c.GetVersion()}
		if n := w.takeDropped(); n > 0 {
			resp.Lines = append([]*rollwavev1.LogLine{{TimeUnixNano: time.Now().UnixNano(), Notice: true,
				Message: fmt.Sprintf("[rollwave: %d lines dropped: the client read too slowly]", n)}}, resp.Lines...)
		}
		if len(resp.GetLines()) > 0 || resp.GetSlot() != rollwavev1.Slot_SLOT_UNSPECIFIED {
			if err := send(resp); err != nil {
				return true, err
			}
		}
		if c.GetEof() {
			done = true
			return true, nil
		}
		return false, nil
	}
	for {
		select {
		case c := <-w.ch:
			if end, err := relay(c); end {
				return err
			}
		case <-w.ended:
			// The final chunk came while the buffer was full: relay what
			// is buffered first.
		drain:
			for {
				select {
				case c := <-w.ch:
					if end, err := relay(c); end {
						return err
					}
				default:
					break drain
				}
			}
			w.mu.Lock()
			final := w.final
			w.mu.Unlock()
			_, err := relay(final)
			return err
		case <-answer.C:
			return status.Errorf(codes.DeadlineExceeded, "host %s did not answer the log request within %s (an agent older than this coordinator cannot serve logs)", host, hostLogsAnswerTimeout)
		case <-limit.C:
			return status.Errorf(codes.DeadlineExceeded, "host %s: the log stream reached its %s limit", host, hostLogsMaxDuration)
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-sess.done:
			done = true
			return status.Errorf(codes.Unavailable, "host %s: its session with the leader ended during the log stream; run the command again", host)
		case <-s.shutdownCh:
			return status.Error(codes.Unavailable, "server shutting down")
		}
	}
}

// agentLogError turns an agent's failed LogChunk into a status error
// with the agent's code (Internal for a code that is no failure).
func agentLogError(c *rollwavev1.LogChunk) error {
	code := codes.Code(c.GetCode())
	if code == codes.OK || code > codes.Unauthenticated {
		code = codes.Internal
	}
	msg := c.GetError()
	if msg == "" {
		msg = "the agent failed to read the log"
	}
	return status.Error(code, msg)
}

func newLogRequestID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
