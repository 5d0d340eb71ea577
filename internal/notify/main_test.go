package notify

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a notifier starts (deliveries, the cursor writer, HTTP
// connections) is gone once its Run returns and the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
