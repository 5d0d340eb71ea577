package cli

import (
	"strings"
	"testing"
)

func TestNotifyStatus(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	r := runAt(t, addr, "notify", "status").expect(t, ExitOK)
	for _, want := range []string{
		"NAME", "LAG", "ops", "webhook", "https://hooks.example.com/rollwave/…", "40/43", "3 events, 21s", "1m ago",
		"answered 503 Service Unavailable", "(5s ago)",
		"ops: 4 event(s) lost to retention before delivery; last: 4 event(s), seq 20 to 23",
		"As seen by the leader, coord-1; events: ops=gate.failed,release.*",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("notify status output lacks %q:\n%s", want, r.stdout)
		}
	}
	f.notify.Targets = nil
	r = runAt(t, addr, "notify", "status").expect(t, ExitOK)
	if !strings.Contains(r.stdout, "No notification targets") {
		t.Errorf("no targets:\n%s", r.stdout)
	}
	runAt(t, addr, "notify", "status", "extra").expect(t, ExitUsage)
}
