//go:build linux

package slot

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStageFileTarball(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "apps", "web", "blue")
	if err := Stage(context.Background(), testArtifact.url, testArtifact.sha, dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "httpd"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bin/httpd: %v, %v", st, err)
	}
	// Staging again replaces the directory as a whole.
	if err := os.WriteFile(filepath.Join(dir, "stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Stage(context.Background(), testArtifact.url, strings.ToUpper(testArtifact.sha), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); !os.IsNotExist(err) {
		t.Fatalf("stale file survived a re-stage: %v", err)
	}
	assertNoLeftovers(t, filepath.Dir(dir), "blue")
}

// assertNoLeftovers checks that only the slot dir remains in parent.
func assertNoLeftovers(t *testing.T, parent string, want ...string) {
	t.Helper()
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %v, want %v", parent, names, want)
	}
}

func TestStageHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/web.tgz":
			w.Write(testArtifact.data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	dir := filepath.Join(t.TempDir(), "green")
	if err := Stage(context.Background(), srv.URL+"/web.tgz", testArtifact.sha, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "httpd")); err != nil {
		t.Fatal(err)
	}
	err := Stage(context.Background(), srv.URL+"/missing.tgz", testArtifact.sha, filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func TestStageChecksumMismatch(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "blue")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "current"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	err := Stage(context.Background(), testArtifact.url, wrong, dir)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testArtifact.sha) {
		t.Fatalf("err = %v, want ErrChecksum naming the expected digest only", err)
	}
	// The old content is untouched and no temp file is left.
	if b, _ := os.ReadFile(filepath.Join(dir, "current")); string(b) != "v1" {
		t.Fatalf("slot dir changed: %q", b)
	}
	assertNoLeftovers(t, parent, "blue")
	if err := Stage(context.Background(), testArtifact.url, "abc", dir); err == nil {
		t.Fatal("short sha256 accepted")
	}
}

func TestStagePlainFile(t *testing.T) {
	t.Parallel()
	data := []byte("#!/bin/sh\necho hi\n")
	p := writeFile(t, "tool", data)
	dir := filepath.Join(t.TempDir(), "blue")
	if err := Stage(context.Background(), "file://"+p, sha256Hex(data), dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "artifact"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("artifact: %v, %v", st, err)
	}
}

func TestStageRejectsUnsafeArchives(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entries []tarEntry
		entry   string // must be named in the error
	}{
		// climbing out with ..
		{"dotdot", []tarEntry{{name: "ok", body: []byte("x")}, {name: "../evil", body: []byte("x")}}, "../evil"},
		{"nested dotdot", []tarEntry{{name: "a/../../evil", body: []byte("x")}}, "a/../../evil"},
		// absolute path
		{"absolute", []tarEntry{{name: "/tmp/evil", body: []byte("x")}}, "/tmp/evil"},
		// symlink pointing outside
		{"symlink escape", []tarEntry{{name: "link", symlink: "../../etc"}}, "link"},
		{"absolute symlink", []tarEntry{{name: "link", symlink: "/etc/passwd"}}, "link"},
		// a safe-looking symlink, then a write through it
		{"write through symlink", []tarEntry{{name: "sub/", dir: true}, {name: "link", symlink: "sub"}, {name: "link/f", body: []byte("x")}}, "link/f"},
		// hardlink to a file outside
		{"hardlink escape", []tarEntry{{name: "h", hardlink: "../../etc/passwd"}}, "h"},
		// device files
		{"char device", []tarEntry{{name: "null", typ: tar.TypeChar}}, "null"},
		{"fifo", []tarEntry{{name: "pipe", typ: tar.TypeFifo}}, "pipe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			data := tarGz(c.entries)
			p := writeFile(t, "a.tar.gz", data)
			root := t.TempDir()
			parent := filepath.Join(root, "apps", "web")
			dir := filepath.Join(parent, "green")
			err := Stage(context.Background(), "file://"+p, sha256Hex(data), dir)
			if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), c.entry) {
				t.Fatalf("err = %v, want ErrUnsafeArchive naming %q", err, c.entry)
			}
			// Nothing was left behind: no slot dir, no temp dirs, no evil.
			assertNoLeftovers(t, parent)
			_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("file left behind: %s", path)
				}
				return nil
			})
		})
	}
}

func TestStageAllowsInsideLinks(t *testing.T) {
	t.Parallel()
	data := tarGz([]tarEntry{
		{name: "lib/", dir: true},
		{name: "lib/real", body: []byte("x")},
		{name: "bin/", dir: true},
		{name: "bin/link", symlink: "../lib/real"},
		{name: "hard", hardlink: "lib/real"},
	})
	p := writeFile(t, "ok.tgz", data)
	dir := filepath.Join(t.TempDir(), "blue")
	if err := Stage(context.Background(), "file://"+p, sha256Hex(data), dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bin/link", "hard"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != "x" {
			t.Fatalf("%s: %q, %v", f, b, err)
		}
	}
}

func TestStageSizeLimit(t *testing.T) {
	// Not parallel: it lowers a package limit.
	old := maxArtifactBytes
	maxArtifactBytes = 10
	t.Cleanup(func() { maxArtifactBytes = old })
	data := []byte("more than ten bytes")
	p := writeFile(t, "big", data)
	err := Stage(context.Background(), "file://"+p, sha256Hex(data), filepath.Join(t.TempDir(), "blue"))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized artifact: %v", err)
	}
}

func TestStageBadScheme(t *testing.T) {
	t.Parallel()
	err := Stage(context.Background(), "ftp://x/y", testArtifact.sha, filepath.Join(t.TempDir(), "blue"))
	if err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("ftp: %v", err)
	}
}
