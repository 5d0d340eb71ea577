package coordinator

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// lineLogger turns the line-oriented output of hashicorp libraries (hclog
// text) into slog records, so there is one root logger. The level is read
// from the "[LEVEL]" tag hclog writes; lines without one log at debug.
type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func newLineLogger(log *slog.Logger) *lineLogger { return &lineLogger{log: log} }

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.emit(line)
	}
	return len(p), nil
}

func (w *lineLogger) emit(line string) {
	level := slog.LevelDebug
	for tag, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug - 4} {
		if i := strings.Index(line, tag); i >= 0 {
			level = l
			// Drop hclog's own timestamp and level tag: slog adds its own.
			line = line[i+len(tag):]
			break
		}
	}
	w.log.Log(context.Background(), level, strings.TrimSpace(line))
}
