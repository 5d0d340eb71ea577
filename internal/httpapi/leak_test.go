package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (listeners, connections) is gone when the
// tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
