package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Slot logs over the session (`rollwave logs HOST APP`): the leader sends
// a LogRequest, the agent answers with LogChunks on the same session, the
// last one with eof set. The agent reads only slots of apps it manages
// (slot.Manager.LogTarget); the journal unit or the log file is named by
// its own slot naming, never by the request.

// logLimits bound log streaming on one agent.
type logLimits struct {
	// maxStreams is how many log requests may run at once.
	maxStreams int
	// followFor ends a follow; readFor bounds a read without follow.
	followFor, readFor time.Duration
	// rate and burst throttle followed lines (lines per second); lines
	// over it are dropped and counted in a notice line.
	rate  rate.Limit
	burst int
	// chunkLines and chunkBytes bound one LogChunk; flushEvery is the
	// longest a read line waits to be sent.
	chunkLines, chunkBytes int
	flushEvery             time.Duration
}

var defaultLogLimits = logLimits{
	maxStreams: 4,
	followFor:  time.Hour,
	readFor:    2 * time.Minute,
	rate:       200,
	burst:      1000,
	chunkLines: 256,
	chunkBytes: 256 << 10,
	flushEvery: 200 * time.Millisecond,
}

// maxRequestIDLen bounds the request ids the agent keeps.
const maxRequestIDLen = 128

// Causes of a log stream's end.
var (
	errLogCancelled = errors.New("log request cancelled by the coordinator")
	errLogTimeLimit = errors.New("log request reached its time limit")
)

// sendFunc queues a message on the session; it returns when the message
// is queued or ctx ends.
type sendFunc func(ctx context.Context, m *rollwavev1.AgentMessage) error

// logStreams runs the agent's log requests.
type logStreams struct {
	mgr  *slot.Manager
	host string
	lim  logLimits
	log  *slog.Logger

	mu     sync.Mutex
	active map[string]context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newLogStreams(mgr *slot.Manager, host string, log *slog.Logger) *logStreams {
	return &logStreams{mgr: mgr, host: host, lim: defaultLogLimits, log: log, active: map[string]context.CancelCauseFunc{}}
}

// start serves a LogRequest in the background; every answer goes through
// send. It returns at once. ctx is the session's: its end ends the stream.
func (s *logStreams) start(ctx context.Context, req *rollwavev1.LogRequest, send sendFunc) {
	id := req.GetRequestId()
	if id == "" || len(id) > maxRequestIDLen {
		s.log.Warn("log request without a usable request id ignored", "request_id_len", len(id))
		return
	}
	fail := func(code codes.Code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.log.Info("log request refused", "request_id", id, "app", req.GetApp(), "error", msg)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = send(ctx, logMessage(&rollwavev1.LogChunk{RequestId: id, Eof: true, Error: msg, Code: int32(code)}))
		}()
	}
	n := int(req.GetLines())
	if n < 1 || n > slot.MaxLogLines {
		fail(codes.InvalidArgument, "lines %d: want 1 to %d", req.GetLines(), slot.MaxLogLines)
		return
	}
	var name slot.Name
	switch req.GetSlot() {
	case rollwavev1.Slot_SLOT_UNSPECIFIED:
	case rollwavev1.Slot_SLOT_BLUE:
		name = slot.Blue
	case rollwavev1.Slot_SLOT_GREEN:
		name = slot.Green
	default:
		fail(codes.InvalidArgument, "slot %d: want blue, green or unspecified (the active slot)", req.GetSlot())
		return
	}
	src, version, err := s.mgr.LogTarget(req.GetApp(), name)
	if err != nil {
		code := codes.InvalidArgument
		if errors.Is(err, slot.ErrUnknownApp) || errors.Is(err, slot.ErrEmptySlot) {
			code = codes.NotFound
		}
		fail(code, "host %s: %v", s.host, err)
		return
	}
	s.mu.Lock()
	switch {
	case s.active[id] != nil:
		s.mu.Unlock()
		fail(codes.InvalidArgument, "log request id %q is already streaming", id)
		return
	case len(s.active) >= s.lim.maxStreams:
		s.mu.Unlock()
		fail(codes.ResourceExhausted, "host %s already streams %d logs, its limit; try again when one ends", s.host, s.lim.maxStreams)
		return
	}
	limit := s.lim.readFor
	if req.GetFollow() {
		limit = s.lim.followFor
	}
	tctx, cancelTime := context.WithTimeoutCause(ctx, limit, errLogTimeLimit)
	rctx, cancel := context.WithCancelCause(tctx)
	s.active[id] = cancel
	s.mu.Unlock()
	s.log.Info("log request", "request_id", id, "app", src.App, "slot", src.Slot, "lines", n, "follow", req.GetFollow())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancelTime()
		defer cancel(nil)
		defer func() {
			s.mu.Lock()
			delete(s.active, id)
			s.mu.Unlock()
		}()
		s.serve(ctx, rctx, id, src, version, n, req.GetFollow(), send)
	}()
}

// cancel stops a request (the client went away).
func (s *logStreams) cancel(id string) {
	s.mu.Lock()
	c := s.active[id]
	s.mu.Unlock()
	if c != nil {
		c(errLogCancelled)
	}
}

// wait waits for every stream to end (their session's context ended).
func (s *logStreams) wait() { s.wg.Wait() }

// serve reads the slot's log and sends it in chunks. ctx is the
// session's, rctx the request's.
func (s *logStreams) serve(ctx, rctx context.Context, id string, src slot.LogSource, version string, n int, follow bool, send sendFunc) {
	lines := make(chan slot.LogLine, s.lim.chunkLines)
	readErr := make(chan error, 1)
	go func() {
		readErr <- s.mgr.ReadLogs(rctx, src, n, follow, func(l slot.LogLine) error {
			select {
			case lines <- l:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
		close(lines)
	}()

	limiter := rate.NewLimiter(s.lim.rate, s.lim.burst)
	chunk := &rollwavev1.LogChunk{RequestId: id, Slot: slotProto(src.Slot), Version: version}
	first, size, dropped := true, 0, 0
	flush := func(sendCtx context.Context, force bool) error {
		if dropped > 0 {
			chunk.Lines = append(chunk.Lines, &rollwavev1.LogLine{TimeUnixNano: time.Now().UnixNano(), Notice: true,
				Message: fmt.Sprintf("[rollwave: %d lines dropped: more than %g lines/s]", dropped, float64(s.lim.rate))})
			dropped = 0
		}
		if len(chunk.Lines) == 0 && !first && !force {
			return nil
		}
		m := chunk
		chunk, first, size = &rollwavev1.LogChunk{RequestId: id}, false, 0
		return send(sendCtx, logMessage(m))
	}
	tick := time.NewTicker(s.lim.flushEvery)
	defer tick.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				s.finish(ctx, rctx, chunk, <-readErr, follow, src, flush)
				return
			}
			if l.Live && !limiter.Allow() {
				dropped++
				continue
			}
			chunk.Lines = append(chunk.Lines, protoLogLine(l))
			size += len(l.Message)
			if len(chunk.Lines) >= s.lim.chunkLines || size >= s.lim.chunkBytes {
				if flush(rctx, false) != nil {
					continue // rctx ended: the reader stops and closes lines
				}
			}
		case <-tick.C:
			_ = flush(rctx, false)
		}
	}
}

// finish sends the end of a stream, or nothing when nobody listens.
func (s *logStreams) finish(ctx, rctx context.Context, chunk *rollwavev1.LogChunk, err error, follow bool, src slot.LogSource,
	flush func(context.Context, bool) error) {
	cause := context.Cause(rctx)
	switch {
	case ctx.Err() != nil, errors.Is(cause, errLogCancelled):
		return // the session ended, or the client went away
	case errors.Is(cause, errLogTimeLimit) && follow:
		chunk.Lines = append(chunk.Lines, &rollwavev1.LogLine{TimeUnixNano: time.Now().UnixNano(), Notice: true,
			Message: fmt.Sprintf("[rollwave: follow ended after its %s limit; run the command again to keep following]", s.lim.followFor)})
	case errors.Is(cause, errLogTimeLimit):
		chunk.Error, chunk.Code = fmt.Sprintf("host %s: reading the log took longer than %s", s.host, s.lim.readFor), int32(codes.DeadlineExceeded)
	case errors.Is(err, slot.ErrNoLogReader):
		chunk.Error, chunk.Code = fmt.Sprintf("host %s: %v", s.host, err), int32(codes.Unimplemented)
	case err != nil:
		chunk.Error, chunk.Code = fmt.Sprintf("host %s: read the log of the %s slot of %s: %v", s.host, src.Slot, src.App, err), int32(codes.Internal)
		s.log.Warn("log request failed", "app", src.App, "slot", src.Slot, "error", err)
	}
	chunk.Eof = true
	_ = flush(ctx, true)
}

func logMessage(c *rollwavev1.LogChunk) *rollwavev1.AgentMessage {
	return &rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_LogChunk{LogChunk: c}}
}

func protoLogLine(l slot.LogLine) *rollwavev1.LogLine {
	out := &rollwavev1.LogLine{Message: l.Message, Truncated: l.Truncated}
	if !l.Time.IsZero() {
		out.TimeUnixNano = l.Time.UnixNano()
	}
	return out
}

// ActiveLogStreams is how many log requests the agent is serving now
// (tests, status).
func (a *Agent) ActiveLogStreams() int {
	a.logs.mu.Lock()
	defer a.logs.mu.Unlock()
	return len(a.logs.active)
}
