package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
)

// slotDir writes config files as the release artifact would.
func slotDir(t *testing.T, config map[string]string) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range config {
		if err := os.WriteFile(filepath.Join(dir, "config", name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func healthz(addr string) int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUnhealthyIfFile: /healthz answers 503 exactly while the configured
// file exists; / keeps answering.
func TestUnhealthyIfFile(t *testing.T) {
	bin, err := demoapp.Build(demoapp.RepoRoot(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "bad-host")
	dir := slotDir(t, map[string]string{"version": "1.2.3", "unhealthy_if_file": marker})
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-dir", dir, "-listen", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	want := func(code int) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			got := healthz(addr)
			return got == code, fmt.Sprintf("/healthz answered %d, want %d", got, code)
		})
	}
	want(http.StatusOK)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want(http.StatusServiceUnavailable)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Version") != "1.2.3" {
		t.Fatalf("/ answered %d version %q while unhealthy, want 200 1.2.3", resp.StatusCode, resp.Header.Get("X-Version"))
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	want(http.StatusOK)
}

// TestUnhealthyIfFileRelative: a relative path is refused at start.
func TestUnhealthyIfFileRelative(t *testing.T) {
	bin, err := demoapp.Build(demoapp.RepoRoot(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := slotDir(t, map[string]string{"unhealthy_if_file": "run/bad"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-dir", dir, "-listen", testutil.FreeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unhealthy_if_file: want an absolute path") {
		t.Fatalf("exit %v, output %q; want a refusal naming unhealthy_if_file", err, out)
	}
}
