package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
)

// The tests here do not run in parallel: a script written while another
// test forks can be held open by the child (ETXTBSY on exec).

// fakeJournalctl writes a script standing in for journalctl (unit tests
// only): it appends its arguments to args.log and prints the entries of
// backlog.json, or, when asked for entries after a cursor or since a
// time (a follow's poll), those of live.json the first time and none
// later.
func fakeJournalctl(t *testing.T, backlog, live string) (bin, argsLog string) {
	t.Helper()
	dir := t.TempDir()
	argsLog = filepath.Join(dir, "args.log")
	for name, body := range map[string]string{"backlog.json": backlog, "live.json": live} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %[1]s/args.log
for a in "$@"; do
  if [ "$a" = --after-cursor ] || [ "$a" = --since ]; then
    if [ ! -e %[1]s/live.done ]; then
      : > %[1]s/live.done
      cat %[1]s/live.json
    fi
    exit 0
  fi
done
cat %[1]s/backlog.json
`, dir)
	bin = filepath.Join(dir, "journalctl")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsLog
}

// sink collects the lines a read emits.
type sink struct {
	testutil.Collector[slot.LogLine]
}

func (s *sink) emit(l slot.LogLine) error { return s.Add(l) }

func (s *sink) messages() []string {
	var out []string
	for _, l := range s.All() {
		out = append(out, l.Message)
	}
	return out
}

const backlogJSON = `{"__CURSOR":"s=1;i=1","__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"started v1"}
not json at all
{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000001000000","MESSAGE":[104,105,255]}
{"__CURSOR":"s=1;i=3","__REALTIME_TIMESTAMP":"1700000002000000","MESSAGE":null}
{"__CURSOR":"s=1;i=4","__REALTIME_TIMESTAMP":"1700000003000000","MESSAGE":["one","two"]}
`

func TestJournalReadsEntries(t *testing.T) {
	bin, argsLog := fakeJournalctl(t, backlogJSON, "")
	s := &sink{}
	err := Journal{Path: bin}.ReadLogs(context.Background(), slot.LogSource{App: "web", Slot: slot.Green}, 5, false, s.emit)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"started v1", "hi\uFFFD", "", "one two"}
	if got := s.messages(); !slices.Equal(got, want) {
		t.Fatalf("messages %q, want %q", got, want)
	}
	if at := s.All()[0].Time; !at.Equal(time.UnixMicro(1700000000123456)) {
		t.Fatalf("time of the first entry %s, want the journal's __REALTIME_TIMESTAMP", at)
	}
	for _, l := range s.All() {
		if l.Live {
			t.Fatalf("backlog line %q marked live", l.Message)
		}
	}
	args, _ := os.ReadFile(argsLog)
	for _, want := range []string{"--unit rollwave-web-green.service", "--output json", "--lines 5", "--no-pager"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("journalctl args %q lack %q", args, want)
		}
	}
}

func TestJournalFollowPollsAfterTheLastCursor(t *testing.T) {
	live := `{"__CURSOR":"s=1;i=5","__REALTIME_TIMESTAMP":"1700000004000000","MESSAGE":"new line"}` + "\n"
	bin, argsLog := fakeJournalctl(t, backlogJSON, live)
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Journal{Path: bin, PollEvery: 20 * time.Millisecond}.ReadLogs(ctx, slot.LogSource{App: "web", Slot: slot.Blue}, 10, true, s.emit)
	}()
	// Polls go on after the new entry, each after the newest cursor.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		args, _ := os.ReadFile(argsLog)
		calls := strings.Split(strings.TrimSpace(string(args)), "\n")
		return len(calls) >= 4 && strings.Contains(calls[1], "--after-cursor s=1;i=4") && strings.Contains(calls[len(calls)-1], "--after-cursor s=1;i=5"),
			fmt.Sprintf("journalctl calls %q; want polls after the last cursor shown", calls)
	})
	got := s.messages()
	if len(got) != 5 || got[4] != "new line" {
		t.Fatalf("messages %q; want the backlog, then the new line once", got)
	}
	if ls := s.All(); !ls[4].Live || ls[3].Live {
		t.Errorf("live flags: backlog %v, followed %v; want false, true", ls[3].Live, ls[4].Live)
	}
	// The client goes away: the polls stop and the read ends cleanly.
	cancel()
	if err := testutil.Receive(t, done, 10*time.Second, "the end of the follow after its context"); err != nil {
		t.Fatalf("follow ended by its context returned %v", err)
	}
}

// With nothing logged before the follow began there is no cursor: the
// polls ask for what came since the read started.
func TestJournalFollowWithoutEntries(t *testing.T) {
	live := `{"__CURSOR":"s=1;i=1","MESSAGE":"first ever"}` + "\n"
	bin, argsLog := fakeJournalctl(t, "", live)
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Journal{Path: bin, PollEvery: 20 * time.Millisecond}.ReadLogs(ctx, slot.LogSource{App: "web", Slot: slot.Blue}, 10, true, s.emit)
	}()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		args, _ := os.ReadFile(argsLog)
		return strings.Contains(string(args), "--since @") && strings.Contains(string(args), "--after-cursor s=1;i=1"),
			fmt.Sprintf("journalctl calls %q", args)
	})
	if got := s.messages(); len(got) != 1 || got[0] != "first ever" {
		t.Fatalf("messages %q", got)
	}
	cancel()
	if err := testutil.Receive(t, done, 10*time.Second, "the end of the follow"); err != nil {
		t.Fatal(err)
	}
}

func TestJournalErrors(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'Failed to open journal: Permission denied' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Journal{Path: failing}.ReadLogs(context.Background(), slot.LogSource{App: "web", Slot: slot.Blue}, 10, false, (&sink{}).emit)
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("failing journalctl: %v, want its stderr in the error", err)
	}
	// A name that is no valid unit never reaches journalctl.
	bin, argsLog := fakeJournalctl(t, backlogJSON, "")
	for _, src := range []slot.LogSource{{App: "../x", Slot: slot.Blue}, {App: "web", Slot: "purple"}, {App: "-o", Slot: slot.Blue}} {
		if err := (Journal{Path: bin}).ReadLogs(context.Background(), src, 10, false, (&sink{}).emit); err == nil {
			t.Errorf("source %+v accepted", src)
		}
	}
	if err := (Journal{Path: bin}).ReadLogs(context.Background(), slot.LogSource{App: "web", Slot: slot.Blue}, slot.MaxLogLines+1, false, (&sink{}).emit); err == nil {
		t.Error("lines over the limit accepted")
	}
	if b, _ := os.ReadFile(argsLog); len(b) > 0 {
		t.Fatalf("journalctl ran for refused requests: %q", b)
	}
}
