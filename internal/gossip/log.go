package gossip

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter adapts memberlist's *log.Logger output to slog. memberlist
// prefixes each line with a level tag such as "[DEBUG]" or "[WARN]".
//
// memberlist's DEBUG and INFO lines go to slog at debug level: they are
// per-probe and per-member chatter, and the Pool logs membership changes
// itself at info. WARN and ERR keep their level, because they report real
// trouble (conflicting node names, UDP blocked while TCP works, refuted
// death claims) that an operator must see.
type logWriter struct {
	logger *slog.Logger
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
	if w.logger.Enabled(context.Background(), level) {
		w.logger.Log(context.Background(), level, string(line), "source", "memberlist")
	}
	return len(p), nil
}
