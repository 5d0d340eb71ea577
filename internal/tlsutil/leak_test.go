package tlsutil

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (gRPC servers and clients) is gone when
// the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
