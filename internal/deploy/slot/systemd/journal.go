package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// Journal reads a slot's log from the systemd journal by running
// journalctl (`journalctl --unit rollwave-<app>-<slot>.service --output
// json`).
//
// journalctl rather than go-systemd's sdjournal package: sdjournal calls
// libsystemd through cgo, and rollwave-agent is built with CGO_ENABLED=0
// as one static binary that runs on any distribution. journalctl's JSON
// output is the journal's documented export format.
type Journal struct {
	// Path of journalctl; empty: "journalctl" looked up on PATH.
	Path string
	// PollEvery is how often a follow looks for new entries; zero means
	// journalPoll.
	PollEvery time.Duration
}

const (
	// maxJournalEntry bounds one JSON entry read from journalctl; a longer
	// one is skipped with a marker line.
	maxJournalEntry = 1 << 20
	// journalStderrMax is how much of journalctl's stderr an error quotes.
	journalStderrMax = 4 << 10
	// journalWaitDelay bounds the wait for journalctl's pipes after it
	// was killed.
	journalWaitDelay = 2 * time.Second
	// journalPoll is how often a follow runs journalctl for new entries;
	// journalPollMax bounds the entries one run reads (the rest come with
	// the next).
	journalPoll    = time.Second
	journalPollMax = 1000
)

var _ slot.LogReader = (*Driver)(nil)

// ReadLogs reads the slot's unit's journal: the last n entries, then,
// with follow, new entries after the last one shown, once a second (by
// journal cursor, so none is missed or repeated).
func (d *Driver) ReadLogs(ctx context.Context, src slot.LogSource, n int, follow bool, emit func(slot.LogLine) error) error {
	return Journal{Path: d.cfg.Journalctl}.ReadLogs(ctx, src, n, follow, emit)
}

// ReadLogs implements slot.LogReader.
func (j Journal) ReadLogs(ctx context.Context, src slot.LogSource, n int, follow bool, emit func(slot.LogLine) error) error {
	// The unit name comes from the app and slot the Manager resolved,
	// checked again here: nothing else of a request reaches journalctl.
	unit, err := unitName(src.App, src.Slot)
	if err != nil {
		return err
	}
	if n < 1 || n > slot.MaxLogLines {
		return fmt.Errorf("journal of %s: lines %d: want 1 to %d", unit, n, slot.MaxLogLines)
	}
	base := []string{"--unit", unit, "--output", "json", "--all", "--output-fields", "MESSAGE", "--no-pager", "--quiet"}
	started := time.Now()
	cursor, err := j.run(ctx, slices.Concat(base, []string{"--lines", strconv.Itoa(n)}), false, emit)
	if err != nil || !follow || ctx.Err() != nil {
		return err
	}
	// Following polls by cursor instead of running journalctl --follow:
	// journalctl --follow sees no new entries when it runs inside a unit
	// with ProtectControlGroups= or ProtectKernelTunables=, as
	// rollwave-agent.service does (seen with systemd 252). One short
	// journalctl run per journalPoll per stream (at most 4 per host) works
	// under any sandboxing, and the cursor makes sure no entry is missed
	// or shown twice between two runs.
	every := j.PollEvery
	if every <= 0 {
		every = journalPoll
	}
	return slot.Poll(ctx, every, func() error {
		args := slices.Concat(base, []string{"--lines", strconv.Itoa(journalPollMax)})
		if cursor != "" {
			args = append(args, "--after-cursor", cursor)
		} else {
			// Nothing was logged before: everything since the read began.
			args = append(args, "--since", fmt.Sprintf("@%d", started.Unix()))
		}
		next, err := j.run(ctx, args, true, emit)
		if next != "" {
			cursor = next
		}
		return err
	})
}

// journalEntry is the part of an entry of journalctl's JSON output that
// is read.
type journalEntry struct {
	Message  json.RawMessage `json:"MESSAGE"`
	Realtime string          `json:"__REALTIME_TIMESTAMP"`
	Cursor   string          `json:"__CURSOR"`
}

// run runs journalctl once and emits its entries; it returns the cursor
// of the last entry. The end of ctx ends it without an error.
func (j Journal) run(ctx context.Context, args []string, live bool, emit func(slot.LogLine) error) (string, error) {
	bin := j.Path
	if bin == "" {
		p, err := exec.LookPath("journalctl")
		if err != nil {
			return "", fmt.Errorf("read the journal: journalctl not found: %w", err)
		}
		bin = p
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr headBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = journalWaitDelay
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("read the journal: %w", err)
	}
	cursor, emitErr, readErr := "", error(nil), error(nil)
	lr := slot.NewLineReader(stdout, maxJournalEntry)
	for {
		line, truncated, ok, err := lr.Next()
		if err != nil || !ok {
			readErr = err
			break
		}
		if truncated {
			emitErr = emit(slot.LogLine{Time: time.Now(), Message: fmt.Sprintf("[a journal entry over %d bytes was skipped]", maxJournalEntry), Truncated: true, Live: live})
		} else if l, c, ok := parseJournalEntry(line, live); ok {
			cursor = c
			emitErr = emit(l)
		}
		if emitErr != nil {
			break
		}
	}
	if emitErr != nil || readErr != nil {
		cancel() // nobody reads journalctl's output any more
	}
	// journalctl closed its output: it is exiting; give it a moment.
	exited := time.AfterFunc(journalWaitDelay, cancel)
	defer exited.Stop()
	werr := cmd.Wait()
	switch {
	case emitErr != nil:
		return cursor, emitErr
	case ctx.Err() != nil:
		return cursor, nil
	case readErr != nil:
		return cursor, fmt.Errorf("read journalctl's output: %w", readErr)
	case werr != nil:
		return cursor, fmt.Errorf("journalctl %s: %v: %s", strings.Join(args, " "), werr, strings.TrimSpace(stderr.String()))
	}
	return cursor, nil
}

// parseJournalEntry reads one JSON entry; ok is false for a line that is
// no entry. MESSAGE is a string, or an array of bytes when it is not
// valid UTF-8 text, or an array of either when the field repeats.
func parseJournalEntry(line []byte, live bool) (slot.LogLine, string, bool) {
	var e journalEntry
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
		return slot.LogLine{}, "", false
	}
	var at time.Time
	if us, err := strconv.ParseInt(e.Realtime, 10, 64); err == nil {
		at = time.UnixMicro(us)
	}
	return slot.NewLogLine(journalMessage(e.Message), at, live), e.Cursor, true
}

func journalMessage(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	var b []byte
	var ints []int
	if json.Unmarshal(raw, &ints) == nil {
		b = make([]byte, 0, len(ints))
		for _, v := range ints {
			b = append(b, byte(v))
		}
		return b
	}
	var many []json.RawMessage
	if json.Unmarshal(raw, &many) == nil {
		parts := make([][]byte, 0, len(many))
		for _, m := range many {
			parts = append(parts, journalMessage(m))
		}
		return bytes.Join(parts, []byte(" "))
	}
	return nil // null or absent: an entry without a message
}

// headBuffer keeps the first journalStderrMax bytes written to it.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := journalStderrMax - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.buf)
}
