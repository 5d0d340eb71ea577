package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/backoff"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Exit codes of -wait (release start -wait, release status -wait). A
// release that ended without succeeding (rolled back, failed, aborted) is
// ExitError (1), as with -watch; a timeout is 3, and the gRPC error kinds
// have their own codes (4–9, errors.go), so a "not found" is never
// mistaken for a timeout.
const (
	// ExitTimedOut: -timeout passed before the release ended — it is still
	// running, paused or waiting for approval; nothing was stopped.
	ExitTimedOut = 3
)

// DefaultWaitTimeout bounds -wait when -timeout is not given.
const DefaultWaitTimeout = 30 * time.Minute

// Reconnect backoff of -wait when the coordinator ends the stream (leader
// change, restart): capped exponential with full jitter.
const (
	waitRetryMin = 200 * time.Millisecond
	waitRetryMax = 5 * time.Second
)

// exitError is an error that carries its own exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is the process exit code for e.
func (e *exitError) ExitCode() int { return e.code }

// waitFlags are -wait and the meaning -timeout takes with it.
type waitFlags struct{ wait bool }

func addWaitFlag(cmd *cobra.Command, w *waitFlags) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, fmt.Sprintf(
		"follow the release until it ends, printing a line per change (-json: one object per line); -timeout then bounds the whole wait (default %s); exit 0 succeeded (or every phase verified and its post_rollout watch runs), 1 rolled back/failed/aborted, %d timed out", DefaultWaitTimeout, ExitTimedOut))
}

// waitTimeout is how long -wait may take: -timeout when given on the
// command line, else DefaultWaitTimeout.
func (a *app) waitTimeout(cmd *cobra.Command) time.Duration {
	if f := cmd.Flags().Lookup("timeout"); f != nil && f.Changed {
		return a.timeout
	}
	return DefaultWaitTimeout
}

// waitLine is one -json progress line; the last line of a wait also
// carries Outcome and ExitCode.
type waitLine struct {
	Time       string `json:"time"`
	Release    string `json:"release"`
	State      string `json:"state"`
	Phase      int32  `json:"phase"`
	Phases     int    `json:"phases"`
	PhaseState string `json:"phase_state"`
	HostsDone  string `json:"hosts_done"`
	Reason     string `json:"reason"`
	Outcome    string `json:"outcome,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
}

func (a *app) lineOf(r *rollwavev1.Release, as []*rollwavev1.Assignment) waitLine {
	l := waitLine{
		Time: a.now().UTC().Format(time.RFC3339), Release: r.GetId(), State: releaseStateName(r.GetState()),
		Phase: r.GetCurrentPhase(), Phases: len(r.GetPhases()), Reason: r.GetReason(),
	}
	if i := int(r.GetCurrentPhase()); i >= 0 && i < len(r.GetPhases()) {
		p := r.GetPhases()[i]
		l.PhaseState = phaseStateName(p.GetState())
		l.HostsDone = hostsDone(p, as)
	}
	return l
}

func (l waitLine) text() string {
	s := fmt.Sprintf("%s  %s  %s  phase %d/%d", l.Time, l.Release, l.State, l.Phase, l.Phases)
	if l.PhaseState != "" {
		s += " " + l.PhaseState + "  hosts " + l.HostsDone
	}
	if l.Reason != "" {
		s += "  (" + l.Reason + ")"
	}
	if l.Outcome != "" {
		s = fmt.Sprintf("%s  %s: %s (exit %d)", l.Time, l.Release, l.Outcome, *l.ExitCode)
	}
	return s
}

// waitRelease follows release id until it ends or timeout passes,
// printing one line per change of state, phase, phase state or hosts
// done. It returns nil if the release succeeded, an error with exit code 1
// if it ended otherwise, and one with ExitTimedOut at the deadline. A
// stream the coordinator ends before the release does (a leader change)
// is opened again, with backoff, until the deadline.
// deadlineSlack: a DeadlineExceeded from the coordinator this close to the
// wait's own deadline is that deadline passing (the server enforces the
// deadline it was sent, and its answer can beat the client's timer);
// earlier, it is a server-side timeout and the watch is retried.
const deadlineSlack = 500 * time.Millisecond

func (a *app) waitRelease(cmd *cobra.Command, client rollwavev1.OperatorServiceClient, id string, timeout time.Duration, asJSON bool) error {
	sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(sigCtx, timeout)
	defer cancel()
	out := cmd.OutOrStdout()
	emit := func(l waitLine) error {
		if asJSON {
			raw, err := json.Marshal(l)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s\n", raw)
			return err
		}
		_, err := fmt.Fprintln(out, l.text())
		return err
	}

	var (
		last     *rollwavev1.Release
		lastLine waitLine
		printed  bool
		retry    = backoff.New(waitRetryMin, waitRetryMax)
	)
	for {
		err := func() error {
			stream, err := client.WatchRelease(ctx, &rollwavev1.WatchReleaseRequest{Id: id})
			if err != nil {
				return err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				retry.Reset()
				last = msg.GetRelease()
				l := a.lineOf(last, msg.GetAssignments())
				cmp := l
				cmp.Time = lastLine.Time
				if !printed || cmp != lastLine {
					if err := emit(l); err != nil {
						return err
					}
					lastLine, printed = l, true
				}
				if waitDone(last.GetState()) {
					return nil
				}
			}
		}()
		if last != nil && waitDone(last.GetState()) {
			return a.waitOutcome(emit, lastLine, last)
		}
		deadline, _ := ctx.Deadline()
		switch {
		case ctx.Err() != nil && sigCtx.Err() == nil,
			// The server enforces the deadline it was sent too, and its
			// reset can arrive a moment before our own context expires.
			status.Code(err) == codes.DeadlineExceeded && sigCtx.Err() == nil && time.Until(deadline) < deadlineSlack:
			return a.timedOut(emit, lastLine, last, id, timeout)
		case sigCtx.Err() != nil:
			return fmt.Errorf("interrupted while waiting for release %s; it carries on (follow it with 'rollwave release status %s -wait')", id, id)
		case errors.Is(err, io.EOF) || status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded:
			// The coordinator ended the stream (leader change, restart):
			// watch again after a pause, until the deadline.
			t := time.NewTimer(retry.Next())
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		default:
			return err
		}
	}
}

// waitOutcome prints the final line and turns the release's end into the
// command's result.
func (a *app) waitOutcome(emit func(waitLine) error, l waitLine, r *rollwavev1.Release) error {
	code := ExitOK
	watching := r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_WATCHING
	if r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED && !watching {
		code = ExitError
	}
	l.Time = a.now().UTC().Format(time.RFC3339)
	l.Outcome, l.ExitCode = releaseStateName(r.GetState()), &code
	if watching {
		// The rollout is done; the watch that follows may still roll
		// it back, which 'release status -watch' shows.
		l.Outcome += watchNote(r, a.now())
	}
	if err := emit(l); err != nil {
		return err
	}
	if code == ExitOK {
		return nil
	}
	msg := fmt.Sprintf("release %s ended %s", r.GetId(), releaseStateName(r.GetState()))
	if r.GetReason() != "" {
		msg += ": " + r.GetReason()
	}
	return &exitError{code: ExitError, msg: msg}
}

// waitDone reports whether -wait stops at a release in state s: when it
// ended, or when every phase verified and its post_rollout watch runs
// (exit 0: the rollout finished; a rollback in the window is followed
// with 'rollwave release status ID -watch').
func waitDone(s rollwavev1.ReleaseState) bool {
	return releaseEnded(s) || s == rollwavev1.ReleaseState_RELEASE_STATE_WATCHING
}

// timedOut reports a deadline that passed with the release still going.
func (a *app) timedOut(emit func(waitLine) error, l waitLine, r *rollwavev1.Release, id string, timeout time.Duration) error {
	code := ExitTimedOut
	l.Time = a.now().UTC().Format(time.RFC3339)
	l.Release = id
	l.Outcome, l.ExitCode = "timed_out", &code
	if err := emit(l); err != nil {
		return err
	}
	msg := fmt.Sprintf("timed out after %s waiting for release %s", timeout, id)
	switch {
	case r == nil:
		msg += " (no answer from the coordinator)"
	case r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL:
		msg += fmt.Sprintf(": it is waiting for approval of phase %d; approve it with 'rollwave release approve %s'", r.GetCurrentPhase(), id)
	default:
		msg += fmt.Sprintf(": it is %s at phase %d; it carries on (raise -timeout, or follow it with 'rollwave release status %s -wait')",
			releaseStateName(r.GetState()), r.GetCurrentPhase(), id)
	}
	return &exitError{code: ExitTimedOut, msg: msg}
}
