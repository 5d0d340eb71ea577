package cli

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestSnapshotSave(t *testing.T) {
	f := fixture()
	f.snapshot = [][]byte{[]byte("rollwave-snapshot-v1\n"), bytes.Repeat([]byte{0xAB}, 300<<10), []byte("end")}
	addr := startServer(t, f)
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runAt(t, addr, "operator", "snapshot", "save", path).expect(t, ExitOK)
	want := bytes.Join(f.snapshot, nil)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes, want the %d streamed", len(got), len(want))
	}
	if !strings.Contains(r.stdout, "(307224 bytes)") {
		t.Errorf("stdout %q does not report the bytes written", r.stdout)
	}
	assertOnlyFile(t, dir, "backup.snap")
}

// A stream failing halfway leaves neither a partial file nor a temp file,
// and keeps an existing file as it was.
func TestSnapshotSaveFailure(t *testing.T) {
	f := fixture()
	f.snapshot = [][]byte{[]byte("partial")}
	f.saveErr = statusErr(codes.Internal, "snapshot: disk on fire")
	addr := startServer(t, f)
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.snap")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runAt(t, addr, "operator", "snapshot", "save", path).expect(t, ExitError)
	if r.stderr != "Error: snapshot: disk on fire\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("existing file changed to %q", got)
	}
	assertOnlyFile(t, dir, "backup.snap")
}

func TestSnapshotRestore(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	content := make([]byte, 2*restoreChunkSize+1000)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	path := writeTemp(t, t.TempDir(), "backup.snap", string(content))

	r := runAt(t, addr, "operator", "snapshot", "restore", path).expect(t, ExitOK)
	if !strings.Contains(r.stdout, "at index 1234") {
		t.Errorf("stdout %q does not report the index", r.stdout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !bytes.Equal(bytes.Join(f.restored, nil), content) {
		t.Fatalf("server received different bytes")
	}
	var sizes []int
	for _, c := range f.restored {
		sizes = append(sizes, len(c))
	}
	if len(sizes) != 3 || sizes[0] != restoreChunkSize || sizes[1] != restoreChunkSize || sizes[2] != 1000 {
		t.Errorf("chunk sizes %v, want 256 KiB chunks", sizes)
	}
}

func TestSnapshotRestoreMissingFile(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	r := runAt(t, addr, "operator", "snapshot", "restore", filepath.Join(t.TempDir(), "nope.snap")).expect(t, ExitError)
	if !strings.Contains(r.stderr, "nope.snap") {
		t.Errorf("stderr %q does not name the file", r.stderr)
	}
	if len(f.requests("SnapshotRestore")) != 0 {
		t.Error("a restore reached the server")
	}
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, name)
	}
}
