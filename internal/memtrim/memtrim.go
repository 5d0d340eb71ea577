// Package memtrim gives a long-running process back the resident pages of
// its own executable that it touched while starting and no longer uses.
//
// A Go binary's text and read-only data (code, type data, pcln tables) are
// private file mappings. Start-up (every package's init, flag and config
// parsing, TLS set-up, the first dials) touches most of them, and the
// kernel maps page-cache pages 64 KiB around each fault
// (fault_around_bytes), so an 18 MiB binary ends up ~15 MiB resident although
// an idle agent runs in a fraction of it. ReleaseExecutable drops those
// pages from the process's page tables with madvise(MADV_DONTNEED). The
// pages stay in the page cache: whatever the process still runs faults
// back in as a minor fault, without disk I/O. Only read-only mappings of
// the executable are touched; writable ones (.data, .bss, the heap) are
// never released, so no state is lost. The kernel can drop these same
// clean pages at any time under memory pressure, so this adds no failure
// mode the process does not already have.
package memtrim

// Result says what ReleaseExecutable did.
type Result struct {
	// Mappings is the number of read-only executable mappings released.
	Mappings int
	// ResidentBytes is what those mappings had resident just before.
	ResidentBytes uint64
}
