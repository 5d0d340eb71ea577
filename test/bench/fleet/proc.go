package fleet

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcSample is what /proc says about one process at one moment.
type ProcSample struct {
	// CPUSeconds is user+system time since the process started.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RSSBytes is the resident set now (VmRSS); PeakRSSBytes the high-water
	// mark (VmHWM).
	RSSBytes     uint64 `json:"rss_bytes"`
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	// AnonBytes and FileBytes split RSS (smaps_rollup Anonymous vs the rest:
	// mostly clean, shared-able pages of the binary).
	AnonBytes uint64 `json:"anon_bytes"`
	FileBytes uint64 `json:"file_bytes"`
	// PSSBytes is the proportional set size (smaps_rollup Pss): each page
	// counted once over all the processes that map it, so a page of the
	// binary shared with the page cache of other processes counts only in
	// part. PSSAnonBytes and PSSFileBytes split it (Pss_Anon, Pss_File;
	// zero on kernels before 5.10, which do not report them).
	PSSBytes     uint64 `json:"pss_bytes"`
	PSSAnonBytes uint64 `json:"pss_anon_bytes"`
	PSSFileBytes uint64 `json:"pss_file_bytes"`
	// HeapInuseBytes is the Go heap in use (go_memstats_heap_inuse_bytes
	// from the process's /metrics; zero where it has none), and
	// PeakHeapInuseBytes the highest value sampled so far.
	HeapInuseBytes     uint64 `json:"heap_inuse_bytes,omitempty"`
	PeakHeapInuseBytes uint64 `json:"peak_heap_inuse_bytes,omitempty"`
}

// clockTicks is USER_HZ; 100 on every Linux this runs on.
const clockTicks = 100

// ReadProc samples pid from /proc.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
	str := string(stat)
	i := strings.LastIndexByte(str, ')')
	if i < 0 {
		return s, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(str[i+1:])
	if len(f) < 13 {
		return s, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	s.CPUSeconds = float64(ut+st) / clockTicks
	kv := func(path string, want map[string]*uint64) {
		fh, err := os.Open(path)
		if err != nil {
			return
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			if p, ok := want[k]; ok {
				n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				*p = n * 1024
			}
		}
	}
	kv(fmt.Sprintf("/proc/%d/status", pid), map[string]*uint64{"VmRSS": &s.RSSBytes, "VmHWM": &s.PeakRSSBytes})
	var rss uint64
	kv(fmt.Sprintf("/proc/%d/smaps_rollup", pid), map[string]*uint64{"Rss": &rss, "Anonymous": &s.AnonBytes,
		"Pss": &s.PSSBytes, "Pss_Anon": &s.PSSAnonBytes, "Pss_File": &s.PSSFileBytes})
	if rss >= s.AnonBytes {
		s.FileBytes = rss - s.AnonBytes
	}
	return s, nil
}

// SelfCPUSeconds is this process's user+system CPU time.
func SelfCPUSeconds() float64 {
	s, _ := ReadProc(os.Getpid())
	return s.CPUSeconds
}

// MiB formats bytes as MiB.
func MiB(b uint64) float64 { return float64(b) / (1 << 20) }
