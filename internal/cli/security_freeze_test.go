package cli

import (
	"strings"
	"testing"
)

// Issue 11 item 6: freeze windows travel as Unix nanoseconds; a time past
// 2262 (or before 1970) wrapped into a different window instead of being
// refused.
func TestSecurityDurationOverflowFreezeTimes(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	for _, args := range [][]string{
		{"-from", "2026-12-24T00:00:00Z", "-to", "3000-01-01T00:00:00Z"},
		{"-from", "1900-01-01T00:00:00Z", "-to", "2026-12-27T00:00:00Z"},
	} {
		r := runAt(t, addr, append(append([]string{"freeze", "add"}, args...), "-reason", "x")...).expect(t, ExitUsage)
		if !strings.Contains(r.stderr, "must be between 1970-01-01T00:00:00Z and 2262-04-11T23:47:16Z") {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
	if len(f.requests("AddFreeze")) != 0 {
		t.Fatalf("a refused window reached the server")
	}
}
