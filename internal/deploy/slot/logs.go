package slot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// Reading a slot's output (`rollwave logs`). The Manager resolves which
// slot of which app is read, from its own state only; the driver reads it:
// the systemd driver from the journal (systemd.Journal), the process
// driver from the log file it writes in the slot directory.

// Bounds of a log read.
const (
	// MaxLogLines is the most lines one request may ask for.
	MaxLogLines = 10000
	// MaxLogLineBytes is where a line is cut (LogLine.Truncated).
	MaxLogLineBytes = 16 << 10
)

// LogFileName is the process driver's log of a slot's stdout and stderr,
// in the slot directory (rotated to LogFileName+".1", see logfile.go).
const LogFileName = "slot.log"

// Errors of LogTarget and ReadLogs callers test for.
var (
	// ErrUnknownApp: the app has no state on this host.
	ErrUnknownApp = errors.New("app not on this host")
	// ErrEmptySlot: nothing was ever installed in the slot (or, for the
	// default slot, no slot serves yet).
	ErrEmptySlot = errors.New("slot holds nothing")
	// ErrNoLogReader: the driver cannot read logs.
	ErrNoLogReader = errors.New("unit driver cannot read logs")
)

// LogLine is one line of a slot's output.
type LogLine struct {
	// Time the line was logged; zero when the source does not say (the
	// process driver's file).
	Time    time.Time
	Message string
	// Truncated: the line was longer than MaxLogLineBytes and was cut.
	Truncated bool
	// Live: the line came while following, after the last lines asked
	// for (callers throttle those, not the backlog).
	Live bool
}

// NewLogLine makes a line from raw output: cut at MaxLogLineBytes and
// made valid UTF-8 (protobuf strings must be), a trailing "\r" dropped.
func NewLogLine(raw []byte, at time.Time, live bool) LogLine {
	truncated := false
	if len(raw) > MaxLogLineBytes {
		raw, truncated = raw[:MaxLogLineBytes], true
	}
	s := strings.TrimSuffix(string(raw), "\r")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return LogLine{Time: at, Message: s, Truncated: truncated, Live: live}
}

// LogSource names the slot a driver reads: the app, the slot and the
// slot directory, all from the Manager's own naming.
type LogSource struct {
	App  string
	Slot Name
	Dir  string
}

// LogReader is implemented by drivers that can read a slot's output.
type LogReader interface {
	// ReadLogs passes the last n lines of the slot's output to emit,
	// oldest first, then, with follow, each new line (Live) until ctx
	// ends, which is not an error. An error from emit stops the read and
	// is returned.
	ReadLogs(ctx context.Context, src LogSource, n int, follow bool, emit func(LogLine) error) error
}

// LogTarget resolves the slot a log request reads: slot, or the active
// slot when slot is "". It returns the source and the version the slot
// holds. The app must have state on this host: nothing from a request is
// used to build a unit or file name unless it names a managed app.
func (m *Manager) LogTarget(app string, slot Name) (LogSource, string, error) {
	if slot != "" && !slot.Valid() {
		return LogSource{}, "", fmt.Errorf("slot %q: want blue or green", slot)
	}
	known := false
	for _, a := range m.Apps() {
		if a == app {
			known = true
			break
		}
	}
	if !known {
		return LogSource{}, "", fmt.Errorf("app %q: %w (apps here: %s)", app, ErrUnknownApp, listOrNone(m.Apps()))
	}
	st, ok := m.AppState(app)
	if !ok {
		return LogSource{}, "", fmt.Errorf("app %q: %w (no slot state)", app, ErrUnknownApp)
	}
	if slot == "" {
		if st.Active == "" {
			return LogSource{}, "", fmt.Errorf("app %q has no active slot yet: %w; name one with -slot", app, ErrEmptySlot)
		}
		slot = st.Active
	}
	ss := st.Slots[slot]
	if ss == nil {
		return LogSource{}, "", fmt.Errorf("%s slot of app %q: %w", slot, app, ErrEmptySlot)
	}
	return LogSource{App: app, Slot: slot, Dir: m.slotDir(app, slot)}, ss.Version, nil
}

// ReadLogs reads a slot's output through the driver (see LogReader).
func (m *Manager) ReadLogs(ctx context.Context, src LogSource, n int, follow bool, emit func(LogLine) error) error {
	r, ok := m.cfg.Driver.(LogReader)
	if !ok {
		return fmt.Errorf("%w: the %s driver", ErrNoLogReader, m.cfg.Driver.Name())
	}
	if n < 1 || n > MaxLogLines {
		return fmt.Errorf("lines %d: want 1 to %d", n, MaxLogLines)
	}
	return r.ReadLogs(ctx, src, n, follow, emit)
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// LineReader splits a growing stream into lines of at most max bytes
// (the rest of a longer line is skipped and the line marked truncated).
// A line without its newline yet stays pending until the newline comes.
type LineReader struct {
	r         *bufio.Reader
	max       int
	buf       []byte
	truncated bool
}

// NewLineReader reads lines of at most max bytes from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next complete line (without "\n"); ok is false at the
// end of what is there now (io.EOF is not returned).
func (lr *LineReader) Next() (line []byte, truncated, ok bool, err error) {
	for {
		frag, err := lr.r.ReadSlice('\n')
		body := frag
		if err == nil {
			body = frag[:len(frag)-1]
		}
		if room := lr.max - len(lr.buf); len(body) > room {
			lr.buf = append(lr.buf, body[:max(room, 0)]...)
			lr.truncated = true
		} else {
			lr.buf = append(lr.buf, body...)
		}
		switch {
		case err == nil:
			line, truncated = lr.buf, lr.truncated
			lr.buf, lr.truncated = nil, false
			return line, truncated, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, false, false, nil
		default:
			return nil, false, false, err
		}
	}
}

// Rest returns a pending line without its newline (the end of a file
// that is not followed), or nil.
func (lr *LineReader) Rest() (line []byte, truncated bool) {
	line, truncated = lr.buf, lr.truncated
	lr.buf, lr.truncated = nil, false
	return line, truncated
}

// followPoll is how often a followed log file is checked for new lines
// and rotation.
const followPoll = 200 * time.Millisecond

// readLogFile reads the last n lines of path (and of path.1, the rotated
// file, when path has fewer) and, with follow, new lines as they are
// written, across rotations, until ctx ends.
//
// Hand-written rather than a tail library (nxadm/tail): none gives the
// last n lines across a rotated file, and the file's writer is this
// package (rotatingFile), so its rotation is known exactly: a rename to
// path.1 and a new file. Polling every followPoll suffices for a human
// reading along.
func readLogFile(ctx context.Context, path string, n int, follow bool, emit func(LogLine) error) error {
	f, err := os.Open(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var size int64
	if f != nil {
		defer func() { f.Close() }()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size = st.Size()
	}
	start, found := int64(0), 0
	if f != nil {
		if start, found, err = tailOffset(f, size, n); err != nil {
			return err
		}
	}
	if found < n {
		if err := emitOld(path+".1", n-found, emit); err != nil {
			return err
		}
	}
	var lr *LineReader
	if f != nil {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return err
		}
		lr = NewLineReader(f, MaxLogLineBytes)
		if err := drain(lr, false, emit); err != nil {
			return err
		}
	}
	if !follow {
		return flushRest(lr, false, emit)
	}
	return Poll(ctx, followPoll, func() error {
		if lr != nil {
			if err := drain(lr, true, emit); err != nil {
				return err
			}
		}
		// Rotated (or created): finish the old file, continue with the
		// new one from its start.
		cur, err := os.Stat(path)
		if err != nil {
			return nil // between the rename and the new file
		}
		if f != nil {
			old, err := f.Stat()
			if err == nil && os.SameFile(old, cur) {
				if pos, err := f.Seek(0, io.SeekCurrent); err == nil && cur.Size() < pos-int64(lr.r.Buffered()) {
					// Truncated in place: start again from the top.
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						return err
					}
					lr = NewLineReader(f, MaxLogLineBytes)
				}
				return nil
			}
			if err := flushRest(lr, true, emit); err != nil {
				return err
			}
			f.Close()
		}
		if f, err = os.Open(path); err != nil {
			f = nil
			return nil
		}
		lr = NewLineReader(f, MaxLogLineBytes)
		return drain(lr, true, emit)
	})
}

// Poll calls fn every interval until ctx ends (nil) or fn fails (its
// error): how a follow looks for new lines.
func Poll(ctx context.Context, every time.Duration, fn func() error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := fn(); err != nil {
			return err
		}
	}
}

// drain emits every complete line readable now.
func drain(lr *LineReader, live bool, emit func(LogLine) error) error {
	for {
		line, truncated, ok, err := lr.Next()
		if err != nil || !ok {
			return err
		}
		l := NewLogLine(line, time.Time{}, live)
		l.Truncated = l.Truncated || truncated
		if err := emit(l); err != nil {
			return err
		}
	}
}

// flushRest emits a pending line without its newline, if any.
func flushRest(lr *LineReader, live bool, emit func(LogLine) error) error {
	if lr == nil {
		return nil
	}
	if line, truncated := lr.Rest(); len(line) > 0 || truncated {
		l := NewLogLine(line, time.Time{}, live)
		l.Truncated = l.Truncated || truncated
		return emit(l)
	}
	return nil
}

// emitOld emits the last n lines of a rotated file, if it exists.
func emitOld(path string, n int, emit func(LogLine) error) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	start, _, err := tailOffset(f, st.Size(), n)
	if err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	lr := NewLineReader(io.LimitReader(f, st.Size()-start), MaxLogLineBytes)
	if err := drain(lr, false, emit); err != nil {
		return err
	}
	return flushRest(lr, false, emit)
}

// tailOffset finds where the last n lines of the first size bytes of f
// begin, reading backwards in blocks. found is how many lines there are
// from that offset (fewer than n when the file is shorter; a last line
// without its newline counts).
func tailOffset(f *os.File, size int64, n int) (offset int64, found int, err error) {
	if size == 0 {
		return 0, 0, nil
	}
	const block = 64 << 10
	buf := make([]byte, block)
	pos := size
	for pos > 0 {
		k := int64(block)
		if pos < k {
			k = pos
		}
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if pos+i == size-1 {
				continue // a newline ending the file ends the last line; it starts none
			}
			found++
			if found == n {
				return pos + i + 1, found, nil
			}
		}
	}
	// The first line has no newline before it.
	return 0, found + 1, nil
}
