package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// logDriver is a unit-test driver whose ReadLogs emits backlog lines
// and then, when following, each line sent on live, until its context
// ends.
type logDriver struct {
	backlog int
	live    chan slot.LogLine
	mu      sync.Mutex
	reads   []slot.LogSource
}

func (d *logDriver) Name() string                                     { return "fake" }
func (d *logDriver) Install(context.Context, slot.Unit) (bool, error) { return false, nil }
func (d *logDriver) Start(context.Context, string, slot.Name) error   { return nil }
func (d *logDriver) Stop(context.Context, string, slot.Name) error    { return nil }
func (d *logDriver) Remove(context.Context, string, slot.Name) error  { return nil }
func (d *logDriver) Close() error                                     { return nil }
func (d *logDriver) Status(context.Context, string, slot.Name) (slot.UnitStatus, error) {
	return slot.UnitStatus{Exists: true, ActiveState: "active", MainPID: 1}, nil
}

func (d *logDriver) ReadLogs(ctx context.Context, src slot.LogSource, n int, follow bool, emit func(slot.LogLine) error) error {
	d.mu.Lock()
	d.reads = append(d.reads, src)
	d.mu.Unlock()
	for i := max(0, d.backlog-n); i < d.backlog; i++ {
		if err := emit(slot.LogLine{Message: fmt.Sprintf("line %d", i)}); err != nil {
			return err
		}
	}
	for follow {
		select {
		case <-ctx.Done():
			return nil
		case l := <-d.live:
			l.Live = true
			if err := emit(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// logTest is one agent's log streams over a manager whose app "web"
// serves from blue (version 1.0.0); green holds nothing.
type logTest struct {
	t      *testing.T
	drv    *logDriver
	s      *logStreams
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *rollwavev1.LogChunk
}

func newLogTest(t *testing.T, lim logLimits) *logTest {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apps", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	state := `{"format":1,"app":"web","active":"blue","generation":1,"slots":{"blue":{"version":"1.0.0","generation":1,"port":8081,"unit_hash":"x"}}}`
	if err := os.WriteFile(filepath.Join(dir, "apps", "web", "state.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	drv := &logDriver{live: make(chan slot.LogLine)}
	mgr, err := slot.NewManager(slot.ManagerConfig{DataDir: dir, Driver: drv, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	lt := &logTest{t: t, drv: drv, out: make(chan *rollwavev1.LogChunk, 1024)}
	lt.s = newLogStreams(mgr, "h1", testutil.Logger(t))
	lt.s.lim = lim
	lt.ctx, lt.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { lt.cancel(); lt.s.wait(); mgr.Close() })
	return lt
}

func (lt *logTest) send(ctx context.Context, m *rollwavev1.AgentMessage) error {
	select {
	case lt.out <- m.GetLogChunk():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (lt *logTest) start(id string, req *rollwavev1.LogRequest) {
	req.RequestId = id
	lt.s.start(lt.ctx, req, lt.send)
}

// next returns the next chunk sent, failing after 10s.
func (lt *logTest) next() *rollwavev1.LogChunk {
	lt.t.Helper()
	return testutil.Receive(lt.t, lt.out, 10*time.Second, "log chunk")
}

// until collects chunks of id until one with eof.
func (lt *logTest) until(id string) []*rollwavev1.LogChunk {
	lt.t.Helper()
	var got []*rollwavev1.LogChunk
	for {
		c := lt.next()
		if c.GetRequestId() != id {
			continue
		}
		got = append(got, c)
		if c.GetEof() {
			return got
		}
	}
}

func (lt *logTest) active() int {
	lt.s.mu.Lock()
	defer lt.s.mu.Unlock()
	return len(lt.s.active)
}

func testLimits() logLimits {
	l := defaultLogLimits
	l.flushEvery = 20 * time.Millisecond
	return l
}

func TestLogRequestSendsTheLastLinesInChunks(t *testing.T) {
	lt := newLogTest(t, testLimits())
	lt.drv.backlog = 1000
	lt.start("r1", &rollwavev1.LogRequest{App: "web", Lines: 600})
	chunks := lt.until("r1")
	if c := chunks[0]; c.GetSlot() != rollwavev1.Slot_SLOT_BLUE || c.GetVersion() != "1.0.0" {
		t.Fatalf("first chunk names slot %s version %q, want the active slot blue, 1.0.0", c.GetSlot(), c.GetVersion())
	}
	var lines []string
	for _, c := range chunks {
		if len(c.GetLines()) > defaultLogLimits.chunkLines {
			t.Fatalf("chunk of %d lines, over the %d limit", len(c.GetLines()), defaultLogLimits.chunkLines)
		}
		if c.GetError() != "" {
			t.Fatalf("error %q", c.GetError())
		}
		for _, l := range c.GetLines() {
			lines = append(lines, l.GetMessage())
		}
	}
	if len(lines) != 600 || lines[0] != "line 400" || lines[599] != "line 999" {
		t.Fatalf("got %d lines (%q … %q), want the last 600", len(lines), lines[0], lines[len(lines)-1])
	}
	if got := lt.drv.reads[0]; got.App != "web" || got.Slot != slot.Blue || !strings.HasSuffix(got.Dir, filepath.Join("apps", "web", "blue")) {
		t.Fatalf("driver asked for %+v, want web's blue slot in the data dir", got)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) { return lt.active() == 0, "request still active" })
}

func TestLogRequestRefusals(t *testing.T) {
	lt := newLogTest(t, testLimits())
	cases := []struct {
		name string
		req  *rollwavev1.LogRequest
		code codes.Code
		msg  string
	}{
		// Lines are 1 to 10,000.
		{"no lines", &rollwavev1.LogRequest{App: "web"}, codes.InvalidArgument, "lines 0"},
		{"too many lines", &rollwavev1.LogRequest{App: "web", Lines: 10001}, codes.InvalidArgument, "want 1 to 10000"},
		// Only apps with state on this host; nothing else reaches a driver.
		{"unknown app", &rollwavev1.LogRequest{App: "db", Lines: 10}, codes.NotFound, `app "db"`},
		{"path as app", &rollwavev1.LogRequest{App: "../../etc", Lines: 10}, codes.NotFound, "app not on this host"},
		{"empty slot", &rollwavev1.LogRequest{App: "web", Slot: rollwavev1.Slot_SLOT_GREEN, Lines: 10}, codes.NotFound, "green slot"},
		{"bad slot", &rollwavev1.LogRequest{App: "web", Slot: 7, Lines: 10}, codes.InvalidArgument, "slot 7"},
	}
	for i, tc := range cases {
		id := fmt.Sprintf("bad-%d", i)
		lt.start(id, tc.req)
		c := lt.until(id)[0]
		if !c.GetEof() || codes.Code(c.GetCode()) != tc.code || !strings.Contains(c.GetError(), tc.msg) {
			t.Errorf("%s: chunk eof=%v code=%s error=%q; want %s naming %q", tc.name, c.GetEof(), codes.Code(c.GetCode()), c.GetError(), tc.code, tc.msg)
		}
	}
	if len(lt.drv.reads) != 0 {
		t.Fatalf("refused requests reached the driver: %+v", lt.drv.reads)
	}
}

func TestLogStreamsAreLimitedAndCancelled(t *testing.T) {
	lim := testLimits()
	lim.maxStreams = 2
	lt := newLogTest(t, lim)
	lt.start("f1", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	lt.start("f2", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	lt.start("f3", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	c := lt.until("f3")[0]
	if codes.Code(c.GetCode()) != codes.ResourceExhausted || !strings.Contains(c.GetError(), "2 logs") {
		t.Fatalf("third stream: code %s %q, want ResourceExhausted naming the limit", codes.Code(c.GetCode()), c.GetError())
	}
	// The client of f1 goes away: its stream ends without an answer and
	// makes room for another.
	lt.s.cancel("f1")
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return lt.active() == 1, fmt.Sprintf("%d streams active", lt.active())
	})
	lt.start("f4", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return lt.active() == 2, fmt.Sprintf("%d streams active", lt.active())
	})
	// The session ends: every stream stops.
	lt.cancel()
	lt.s.wait()
	if n := lt.active(); n != 0 {
		t.Fatalf("%d streams active after the session ended", n)
	}
	for len(lt.out) > 0 {
		if c := <-lt.out; c.GetRequestId() == "f1" && c.GetEof() {
			t.Fatal("a cancelled stream sent its end to a client that left")
		}
	}
}

var droppedRE = regexp.MustCompile(`^\[rollwave: (\d+) lines dropped`)

func TestFollowedLinesAreThrottled(t *testing.T) {
	lim := testLimits()
	lim.rate, lim.burst = 5, 10
	lt := newLogTest(t, lim)
	lt.start("f", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	const sent = 200
	for i := 0; i < sent; i++ {
		lt.drv.live <- slot.LogLine{Message: fmt.Sprintf("live %d", i)}
	}
	passed, dropped := 0, 0
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		for {
			select {
			case c := <-lt.out:
				for _, l := range c.GetLines() {
					if !l.GetNotice() {
						passed++
						continue
					}
					m := droppedRE.FindStringSubmatch(l.GetMessage())
					if m == nil {
						t.Fatalf("unexpected notice %q", l.GetMessage())
					}
					n, _ := strconv.Atoi(m[1])
					dropped += n
				}
				continue
			default:
			}
			break
		}
		return passed+dropped == sent, fmt.Sprintf("%d lines passed, %d reported dropped, of %d", passed, dropped, sent)
	})
	if dropped == 0 || passed >= sent {
		t.Fatalf("%d of %d lines passed at 5 lines/s (burst 10); want most dropped", passed, sent)
	}
}

func TestFollowEndsAtItsTimeLimit(t *testing.T) {
	lim := testLimits()
	lim.followFor = 300 * time.Millisecond
	lt := newLogTest(t, lim)
	lt.start("f", &rollwavev1.LogRequest{App: "web", Lines: 1, Follow: true})
	chunks := lt.until("f")
	last := chunks[len(chunks)-1]
	lines := last.GetLines()
	if last.GetError() != "" || len(lines) == 0 || !lines[len(lines)-1].GetNotice() ||
		!strings.Contains(lines[len(lines)-1].GetMessage(), "follow ended after its 300ms limit") {
		t.Fatalf("last chunk %v; want eof with a notice naming the limit", last)
	}
}
