package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rollwave/rollwave/internal/fsutil"
)

// writeIfChanged replaces path with content unless it already holds
// exactly that, and reports whether it wrote. The write is atomic and
// durable: a temp file in the same directory is written and fsynced, then
// renamed over path, then the directory is fsynced so the rename survives
// a crash. systemd never sees a half-written unit.
func writeIfChanged(path string, content []byte) (bool, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, content):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}

	// fsutil names its temp file ".<name>.*.tmp": not a unit type, so
	// systemd ignores it even if a reload happens while it exists.
	if err := fsutil.WriteFileAtomic(path, content, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// removeFile deletes path and reports whether it existed.
func removeFile(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", path, err)
	}
	return true, fsutil.SyncDir(filepath.Dir(path))
}

// fileExists reports whether path exists (errors other than "not exist"
// count as existing: the caller then does the safe, costlier thing).
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
