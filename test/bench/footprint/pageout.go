package footprint

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Linux amd64 syscall numbers and advice (not in package syscall).
const (
	sysPidfdOpen      = 434
	sysProcessMadvise = 440
	madvPageout       = 21
)

// PageOutBinary asks the kernel (process_madvise MADV_PAGEOUT) to reclaim
// the pages of pid's mappings of its own executable. Pages the process
// still uses fault back in; what stays out was only needed at start-up.
// This is a diagnostic: it shows the binary's steady-state working set.
func PageOutBinary(pid int) error {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return err
	}
	defer f.Close()
	type iovec struct {
		base uintptr
		len  uint64
	}
	var iov []iovec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		b, _ := strconv.ParseUint(hi, 16, 64)
		iov = append(iov, iovec{uintptr(a), b - a})
	}
	if len(iov) == 0 {
		return fmt.Errorf("no mapping of %s in pid %d", exe, pid)
	}
	pidfd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if e != 0 {
		return fmt.Errorf("pidfd_open: %w", e)
	}
	defer syscall.Close(int(pidfd))
	_, _, e = syscall.Syscall6(sysProcessMadvise, pidfd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), madvPageout, 0, 0)
	if e != 0 {
		return fmt.Errorf("process_madvise: %w", e)
	}
	return nil
}
