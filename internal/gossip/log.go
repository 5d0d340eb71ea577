package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logWriter adapts memberlist's *log.Logger output to slog. memberlist
// prefixes each line with a level tag such as "[DEBUG]" or "[WARN]".
//
// memberlist's DEBUG and INFO lines go to slog at debug level: they are
// per-probe and per-member chatter, and the Pool logs membership changes
// itself at info. WARN and ERR keep their level, because they report real
// trouble (conflicting node names, UDP blocked while TCP works, refuted
// death claims) that an operator must see.
//
// WARN and ERR lines are rate-limited per kind of message: memberlist logs
// one ERR line per garbage packet or stream ("Decrypt packet failed",
// "Failed to decode ping", "msg type (9) not supported"), so anyone who
// can send UDP to the gossip port could otherwise flood the log. The
// first line of a kind is logged; later ones of that kind at most once per
// logRepeatInterval, with the number suppressed in between.
type logWriter struct {
	logger *slog.Logger
	// now is time.Now unless a test sets it.
	now func() time.Time

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

// logRepeatInterval is the least time between two WARN/ERR lines of one
// kind; maxLogKinds bounds the kinds tracked (garbage can make up new
// texts, so beyond it all share one budget).
const (
	logRepeatInterval = 10 * time.Second
	maxLogKinds       = 64
)

// logKey is what a line says without its details: the text before the
// first ": " or " from=", digits dropped.
func logKey(line string) string {
	for _, sep := range []string{": ", " from=", " (from="} {
		if i := strings.Index(line, sep); i >= 0 {
			line = line[:i]
		}
	}
	if len(line) > 80 {
		line = line[:80]
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, line)
}

// admit reports whether a WARN/ERR line may be logged now, and how many
// of its kind were suppressed since the last one.
func (w *logWriter) admit(line string) (bool, int) {
	now := time.Now
	if w.now != nil {
		now = w.now
	}
	t := now()
	key := logKey(line)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.kinds == nil {
		w.kinds = map[string]*logKind{}
	}
	k, ok := w.kinds[key]
	if !ok {
		if len(w.kinds) >= maxLogKinds {
			key = "\x00other"
			k = w.kinds[key]
		}
		if k == nil {
			w.kinds[key] = &logKind{last: t}
			return true, 0
		}
	}
	if t.Sub(k.last) < logRepeatInterval {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = t, 0
	return true, n
}

var levelTags = []struct {
	tag   []byte
	level slog.Level
}{
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelDebug},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERR]"), slog.LevelError},
	{[]byte("[ERROR]"), slog.LevelError},
}

// Write logs one memberlist line. It never fails, so memberlist never sees
// a logging error.
func (w *logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelDebug
	for _, lt := range levelTags {
		if bytes.HasPrefix(line, lt.tag) {
			level = lt.level
			line = bytes.TrimSpace(line[len(lt.tag):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if !w.logger.Enabled(context.Background(), level) {
		return len(p), nil
	}
	if level < slog.LevelWarn {
		w.logger.Log(context.Background(), level, string(line), "source", "memberlist")
		return len(p), nil
	}
	ok, suppressed := w.admit(string(line))
	if !ok {
		return len(p), nil
	}
	if suppressed > 0 {
		w.logger.Log(context.Background(), level, string(line), "source", "memberlist",
			"similar_lines_suppressed", suppressed)
		return len(p), nil
	}
	w.logger.Log(context.Background(), level, string(line), "source", "memberlist")
	return len(p), nil
}
