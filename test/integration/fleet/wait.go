//go:build e2e

package fleet

import (
	"testing"
	"time"
)

// waitFor polls cond until it reports true or timeout passes, then fails
// the test with the last thing cond said and, if given, extra context
// (logs). Like testutil.WaitFor, it is a synchronisation point, never a
// fixed delay.
func waitFor(t testing.TB, timeout time.Duration, cond func() (bool, string), context func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	var last string
	for {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			extra := ""
			if context != nil {
				extra = "\n" + context()
			}
			t.Fatalf("condition not met within %s: %s%s", timeout, last, extra)
		}
		time.Sleep(interval)
		if interval < 200*time.Millisecond {
			interval *= 2
		}
	}
}
