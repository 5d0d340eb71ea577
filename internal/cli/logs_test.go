package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func logsScript() []*rollwavev1.HostLogsResponse {
	at := time.Date(2026, 11, 29, 11, 59, 58, 123_000_000, time.UTC).UnixNano()
	return []*rollwavev1.HostLogsResponse{
		{Slot: rollwavev1.Slot_SLOT_GREEN, Version: "2.4.0", Lines: []*rollwavev1.LogLine{
			{TimeUnixNano: at, Message: "api 2.4.0 listening"},
			{Message: "from a file, no time"},
		}},
		{Lines: []*rollwavev1.LogLine{
			{TimeUnixNano: at, Message: "xxxx", Truncated: true},
			{TimeUnixNano: at, Message: "[rollwave: 12 lines dropped: more than 200 lines/s]", Notice: true},
		}},
	}
}

func TestLogsPrintsLines(t *testing.T) {
	f := newFakeOperator()
	f.logs = logsScript()
	addr := startServer(t, f)
	r := runAt(t, addr, "logs", "web-1", "api", "-slot", "green", "-n", "50").expect(t, ExitOK)
	want := "2026-11-29T11:59:58.123Z api 2.4.0 listening\n" +
		"from a file, no time\n" +
		"2026-11-29T11:59:58.123Z xxxx [truncated]\n" +
		"2026-11-29T11:59:58.123Z [rollwave: 12 lines dropped: more than 200 lines/s]\n"
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "==> host web-1, app api, slot green (version 2.4.0)") {
		t.Fatalf("stderr %q lacks the header", r.stderr)
	}
	req := lastRequest[*rollwavev1.HostLogsRequest](t, f, "HostLogs")
	if req.GetHost() != "web-1" || req.GetApp() != "api" || req.GetSlot() != rollwavev1.Slot_SLOT_GREEN || req.GetLines() != 50 || req.GetFollow() {
		t.Fatalf("request %v", req)
	}
	// -f and the default line count.
	runAt(t, addr, "logs", "web-1", "api", "-f").expect(t, ExitOK)
	if req := lastRequest[*rollwavev1.HostLogsRequest](t, f, "HostLogs"); !req.GetFollow() || req.GetLines() != 200 || req.GetSlot() != rollwavev1.Slot_SLOT_UNSPECIFIED {
		t.Fatalf("-f request %v, want follow, 200 lines, the active slot", req)
	}
}

func TestLogsJSON(t *testing.T) {
	f := newFakeOperator()
	f.logs = logsScript()
	addr := startServer(t, f)
	r := runAt(t, addr, "logs", "web-1", "api", "-json").expect(t, ExitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || r.stderr != "" {
		t.Fatalf("-json printed %d lines (stderr %q), want 4 and nothing else:\n%s", len(lines), r.stderr, r.stdout)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["host"] != "web-1" || first["app"] != "api" || first["slot"] != "green" || first["version"] != "2.4.0" ||
		first["time"] != "2026-11-29T11:59:58.123Z" || first["message"] != "api 2.4.0 listening" || first["notice"] != false {
		t.Fatalf("first -json line %v", first)
	}
	if second["time"] != "" || second["time_unix_nano"] != float64(0) {
		t.Fatalf("a line without time: %v", second)
	}
}

func TestLogsRefusals(t *testing.T) {
	f := newFakeOperator()
	addr := startServer(t, f)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"logs", "web-1", "api", "-n", "0"}, "invalid -n 0: want 1 to 10000"},
		{[]string{"logs", "web-1", "api", "-n", "10001"}, "invalid -n 10001"},
		{[]string{"logs", "web-1", "api", "-slot", "red"}, `invalid -slot "red": want blue or green`},
		{[]string{"logs", "web-1"}, "needs 2 argument(s): HOST APP"},
		{[]string{"logs", "", "api"}, "HOST and APP must not be empty"},
	} {
		r := runAt(t, addr, tc.args...).expect(t, ExitUsage)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: stderr %q, want %q", tc.args, r.stderr, tc.msg)
		}
	}
	if n := len(f.requests("HostLogs")); n != 0 {
		t.Fatalf("%d refused commands reached the server", n)
	}
	// The server's refusal keeps its code.
	f.errs["HostLogs"] = status.Error(codes.NotFound, `app "db" is not on host web-1 (it has apps api)`)
	r := runAt(t, addr, "logs", "web-1", "db").expect(t, ExitNotFound)
	if !strings.Contains(r.stderr, `app "db" is not on host web-1`) {
		t.Fatalf("stderr %q", r.stderr)
	}
}
