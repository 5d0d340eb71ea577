package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// narrator prints the session. Everything goes through it, under one
// lock, so the traffic observer's lines never cut a CLI line in half.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	subst []string // replacements that shorten long paths for display
}

func newNarrator(w io.Writer) *narrator {
	return &narrator{w: w, start: time.Now()}
}

func (n *narrator) elapsed() string {
	d := time.Since(n.start).Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func (n *narrator) shorten(s string) string {
	if len(n.subst) == 0 {
		return s
	}
	return strings.NewReplacer(n.subst...).Replace(s)
}

// section starts a part of the session.
func (n *narrator) section(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "\n==> [%s] %s\n", n.elapsed(), fmt.Sprintf(format, args...))
}

// note is a line of explanation.
func (n *narrator) note(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	line := n.shorten(fmt.Sprintf(format, args...))
	if line == "" {
		fmt.Fprintln(n.w)
		return
	}
	fmt.Fprintf(n.w, "    %s\n", line)
}

// command shows a command line as the user would type it.
func (n *narrator) command(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "\n$ %s\n", n.shorten(line))
}

// output prints a command's output line, indented.
func (n *narrator) output(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "  %s\n", n.shorten(line))
}

// event prints something the demo itself observed, with the time.
func (n *narrator) event(at time.Time, format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "  %s  >> %s\n", at.UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// raw prints text as it is.
func (n *narrator) raw(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprint(n.w, s)
}

// lineWriter turns a stream of bytes into whole lines for the narrator.
type lineWriter struct {
	emit func(string)
	buf  bytes.Buffer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf.Next(i + 1))
		l.emit(strings.TrimRight(line, "\r\n"))
	}
}

// flush emits a last line without a newline.
func (l *lineWriter) flush() {
	if l.buf.Len() > 0 {
		l.emit(l.buf.String())
		l.buf.Reset()
	}
}
