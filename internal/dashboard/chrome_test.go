package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
)

// Chromium on a loaded machine is slow: every browser step gets this long.
const browserStep = 90 * time.Second

// browserLife bounds a test's whole browser session.
const browserLife = 12 * time.Minute

// screenshotsEnv set to 1 makes the browser tests write docs/img/*.png
// (tracked files; normal runs leave them alone).
const screenshotsEnv = "ROLLWAVE_UPDATE_SCREENSHOTS"

// newBrowser starts a headless Chromium for the test, or skips the test
// when none is installed (.ci/run installs Debian's chromium, so CI never
// skips).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium on PATH (apt-get install -y chromium): skipping the dashboard's browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	)
	// The browser lives as long as the first context it runs in, so that
	// context carries the whole browser's deadline.
	life, lcancel := context.WithTimeout(context.Background(), browserLife)
	actx, acancel := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); acancel(); lcancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx
}

// do runs browser steps with a deadline.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true in the page; what
// reports what the page shows while it is not.
func waitJS(t *testing.T, ctx context.Context, within time.Duration, expr, what string) {
	t.Helper()
	testutil.WaitFor(t, within, func() (bool, string) {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err != nil {
			return false, err.Error()
		}
		if ok {
			return true, ""
		}
		seen, _ := chromedp.Run(sctx, chromedp.Evaluate[string](what))
		return false, fmt.Sprintf("waiting for %s; page: %s", expr, seen)
	})
}

// screenshot saves the page as docs/img/dashboard-<name>.png when
// ROLLWAVE_UPDATE_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv(screenshotsEnv) != "1" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(demoapp.RepoRoot(), "docs", "img", "dashboard-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
