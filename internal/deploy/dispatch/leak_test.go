package dispatch

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts is gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
