//go:build linux

package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseExecutable releases the resident pages of the process's read-only
// mappings of its own executable (see the package comment). It is safe to
// call at any time from any goroutine; it costs one read of
// /proc/self/smaps and one madvise per mapping.
func ReleaseExecutable() (Result, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, fmt.Errorf("find own executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return Result{}, fmt.Errorf("read /proc/self/smaps: %w", err)
	}
	var res Result
	for _, m := range readOnlyMappings(smaps, exe) {
		// The range comes from the kernel's own list of this process's
		// mappings, not memory Go allocated, so it is passed as plain numbers.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return res, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, errno)
		}
		res.Mappings++
		res.ResidentBytes += m.rss
	}
	return res, nil
}

// mapping is one line of /proc/self/smaps with its Rss.
type mapping struct {
	start, end uintptr
	perms      string
	path       string
	rss        uint64
	anon       uint64 // private pages written since mapping (copy-on-write)
}

// readOnlyMappings returns the mappings of path that are not writable and
// hold only pages as the file has them. A read-only mapping with
// anonymous pages was written before it was made read-only — relocations
// of a position-independent build (RELRO, .data.rel.ro) — and dropping
// those pages would bring back the unrelocated file contents, so such a
// mapping is never returned. A mapping's header is
// "start-end perms offset dev inode path".
func readOnlyMappings(smaps []byte, path string) []mapping {
	var clean []mapping
	for _, m := range parseMappings(smaps, path) {
		if m.anon == 0 {
			clean = append(clean, m)
		}
	}
	return clean
}

// parseMappings returns every read-only private mapping of path with its
// Rss and Anonymous sizes.
func parseMappings(smaps []byte, path string) []mapping {
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4 {
			cur = nil
			if len(f) < 6 || strings.Join(f[5:], " ") != path || f[1][1] != '-' || f[1][3] != 'p' {
				continue
			}
			lo, hi, _ := strings.Cut(f[0], "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || e <= s {
				continue
			}
			out = append(out, mapping{start: uintptr(s), end: uintptr(e), perms: f[1], path: path})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && len(f) == 3 && (f[0] == "Rss:" || f[0] == "Anonymous:") {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				if f[0] == "Rss:" {
					cur.rss = kb << 10
				} else {
					cur.anon = kb << 10
				}
			}
		}
	}
	return out
}
