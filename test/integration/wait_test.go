//go:build e2e

package integration

import (
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// waitFor is testutil.WaitFor: poll with a deadline, report what was last
// seen.
func waitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, timeout, cond)
}
