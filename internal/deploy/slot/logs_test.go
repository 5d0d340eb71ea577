package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// collect reads a log file without follow and returns its lines.
func collect(t *testing.T, path string, n int) []LogLine {
	t.Helper()
	var got []LogLine
	if err := readLogFile(context.Background(), path, n, false, func(l LogLine) error {
		got = append(got, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func messages(ls []LogLine) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Message)
	}
	return out
}

func putFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestReadLogFileLastLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, LogFileName)
	putFile(t, path+".1", "o1\no2\no3\n")
	putFile(t, path, "a\nb\nc\nd\n")
	cases := []struct {
		name    string
		content string // of slot.log; "" keeps the one above
		n       int
		want    []string
	}{
		// The last lines of the current file only.
		{"within the file", "", 2, []string{"c", "d"}},
		{"exactly the file", "", 4, []string{"a", "b", "c", "d"}},
		// More than the file holds: the rest from the rotated file, in order.
		{"into the rotated file", "", 6, []string{"o2", "o3", "a", "b", "c", "d"}},
		{"more than both", "", 100, []string{"o1", "o2", "o3", "a", "b", "c", "d"}},
		// A last line without its newline is a line; blank lines count.
		{"partial last line", "x\n\ny", 2, []string{"", "y"}},
		{"one line no newline", "only", 1, []string{"only"}},
	}
	for _, tc := range cases {
		if tc.content != "" {
			putFile(t, path, tc.content)
		}
		if got := messages(collect(t, path, tc.n)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: last %d lines = %q, want %q", tc.name, tc.n, got, tc.want)
		}
	}
	// No file at all (the slot never ran under this driver): no lines.
	if got := collect(t, filepath.Join(t.TempDir(), LogFileName), 10); len(got) != 0 {
		t.Fatalf("missing file gave %q", messages(got))
	}
}

func TestReadLogFileLargeFileReadsBackwards(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), LogFileName)
	var b strings.Builder
	for i := 0; i < 50000; i++ { // ~600 KiB: several 64 KiB blocks
		fmt.Fprintf(&b, "line %06d\n", i)
	}
	putFile(t, path, b.String())
	got := messages(collect(t, path, MaxLogLines))
	if len(got) != MaxLogLines || got[0] != "line 040000" || got[len(got)-1] != "line 049999" {
		t.Fatalf("got %d lines, %q … %q; want 10000 from line 040000", len(got), got[0], got[len(got)-1])
	}
}

func TestLogLinesAreCutAndValidUTF8(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), LogFileName)
	long := strings.Repeat("x", 3*MaxLogLineBytes)
	putFile(t, path, long+"\nbad \xff\xfe bytes\r\nshort\n")
	got := collect(t, path, 3)
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3", len(got))
	}
	if !got[0].Truncated || len(got[0].Message) != MaxLogLineBytes {
		t.Fatalf("long line: truncated=%v len=%d, want cut at %d", got[0].Truncated, len(got[0].Message), MaxLogLineBytes)
	}
	if got[1].Message != "bad \uFFFD bytes" || got[1].Truncated {
		t.Fatalf("invalid UTF-8 line = %q, want replacement characters and no \\r", got[1].Message)
	}
	if got[2].Message != "short" || got[2].Truncated {
		t.Fatalf("third line = %+v", got[2])
	}
}

// lineSink collects followed lines for a test.
type lineSink struct{ testutil.Collector[LogLine] }

func (s *lineSink) emit(l LogLine) error { return s.Add(l) }

func (s *lineSink) get() []LogLine { return s.All() }

func (s *lineSink) waitFor(t *testing.T, want []string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		got := messages(s.get())
		return slices.Equal(got, want), fmt.Sprintf("lines %q, want %q", got, want)
	})
}

func TestReadLogFileFollowsAcrossRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), LogFileName)
	putFile(t, path, "old 1\nold 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	sink := &lineSink{}
	done := make(chan error, 1)
	go func() { done <- readLogFile(ctx, path, 1, true, sink.emit) }()
	sink.waitFor(t, []string{"old 2"})

	// New lines, one written in two pieces: it comes once, whole.
	appendFile(t, path, "new 1\nnew ")
	appendFile(t, path, "2\n")
	sink.waitFor(t, []string{"old 2", "new 1", "new 2"})

	// Rotation as rotatingFile does it: a last line into the old file,
	// the rename, then a new file.
	appendFile(t, path, "last of old\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	putFile(t, path, "first of new\n")
	sink.waitFor(t, []string{"old 2", "new 1", "new 2", "last of old", "first of new"})

	for i, l := range sink.get() {
		if l.Live != (i > 0) {
			t.Errorf("line %d %q: Live=%v; only lines after the backlog are live", i, l.Message, l.Live)
		}
	}
	cancel()
	if err := testutil.Receive(t, done, 10*time.Second, "the end of the follow after its context"); err != nil {
		t.Fatalf("follow ended by its context returned %v", err)
	}
}

func TestReadLogFileStopsOnEmitError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), LogFileName)
	putFile(t, path, "a\nb\nc\n")
	stop := errors.New("stop")
	calls := 0
	err := readLogFile(context.Background(), path, 3, true, func(LogLine) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("err %v after %d calls, want the emit error after 1", err, calls)
	}
}

func TestLogTargetResolvesOnlyManagedSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, _, err := e.m.LogTarget(testApp, ""); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("before any deploy: %v, want ErrUnknownApp", err)
	}
	e.mustSwap(1, "v1")
	src, version, err := e.m.LogTarget(testApp, "")
	if err != nil || src.Slot != Blue || version != "v1" || src.Dir != filepath.Join(e.dataDir, "apps", testApp, "blue") {
		t.Fatalf("default slot = %+v %q %v, want blue v1 in the data dir", src, version, err)
	}
	// The other slot was never installed.
	if _, _, err := e.m.LogTarget(testApp, Green); !errors.Is(err, ErrEmptySlot) {
		t.Fatalf("green before a second deploy: %v, want ErrEmptySlot", err)
	}
	// Names that are no managed app never reach a driver, whatever they hold.
	for _, app := range []string{"other", "../web", "web/../../etc", ""} {
		if _, _, err := e.m.LogTarget(app, ""); !errors.Is(err, ErrUnknownApp) {
			t.Errorf("app %q: %v, want ErrUnknownApp", app, err)
		}
	}
	if _, _, err := e.m.LogTarget(testApp, "purple"); err == nil {
		t.Fatal("slot purple accepted")
	}
	// The process driver's file holds what the slot printed at start.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		var got []LogLine
		err := e.m.ReadLogs(context.Background(), src, 10, false, func(l LogLine) error { got = append(got, l); return nil })
		for _, l := range got {
			if strings.Contains(l.Message, "httpd v1 listening on") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("lines %q, err %v", messages(got), err)
	})
	if err := e.m.ReadLogs(context.Background(), src, MaxLogLines+1, false, func(LogLine) error { return nil }); err == nil {
		t.Fatal("ReadLogs accepted more than MaxLogLines")
	}
}
