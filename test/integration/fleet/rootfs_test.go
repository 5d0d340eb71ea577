//go:build e2e

package fleet

import (
	"context"
	"testing"
	"time"
)

func TestEnsureRootfs(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	dir, built, err := EnsureRootfs(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING rootfs %s built=%v in %s", dir, built, time.Since(start).Round(time.Millisecond))
}
