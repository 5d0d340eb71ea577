//go:build linux

package memtrim

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const smapsFixture = `00400000-00ae2000 r-xp 00000000 fe:00 9978397                            /usr/bin/rollwave-agent
Size:               7048 kB
Rss:                6900 kB
00ae2000-0122c000 r--p 006e2000 fe:00 9978397                            /usr/bin/rollwave-agent
Size:               7464 kB
Rss:                7100 kB
0122c000-012c0000 rw-p 00e2c000 fe:00 9978397                            /usr/bin/rollwave-agent
Size:                592 kB
Rss:                 272 kB
012c0000-03306000 rw-p 00000000 00:00 0 
Size:              32792 kB
Rss:                 112 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:00 1234                       /usr/lib/other.so
Size:               1024 kB
Rss:                1024 kB
7f1000000000-7f1000001000 r--p 00000000 fe:00 77                         /opt/my dir/agent (deleted)
Size:                  4 kB
Rss:                   4 kB
55d000000000-55d000200000 r-xp 00000000 fe:00 88                         /usr/bin/pie-agent
Size:               2048 kB
Rss:                1800 kB
Anonymous:             0 kB
55d000200000-55d000240000 r--p 00200000 fe:00 88                         /usr/bin/pie-agent
Size:                256 kB
Rss:                 256 kB
Anonymous:           120 kB
7ffec8b32000-7ffec8b53000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  12 kB
`

// Only the executable's read-only mappings are picked, with their Rss.
func TestReadOnlyMappings(t *testing.T) {
	cases := []struct {
		name string // what the case shows
		path string
		want []string
	}{
		// Text and read-only data; never the writable .data/.bss mapping,
		// the heap or another file.
		{"text and rodata only", "/usr/bin/rollwave-agent", []string{"400000-ae2000 r-xp 6900", "ae2000-122c000 r--p 7100"}},
		// A replaced binary shows " (deleted)" in both readlink and smaps;
		// a space in the path is kept.
		{"deleted path with a space", "/opt/my dir/agent (deleted)", []string{"7f1000000000-7f1000001000 r--p 4"}},
		// A position-independent build's RELRO mapping was written by
		// relocation (Anonymous > 0): dropping it would undo that, so it
		// is left alone; its clean text is still released.
		{"relocated read-only data kept", "/usr/bin/pie-agent", []string{"55d000000000-55d000200000 r-xp 1800"}},
		{"not mapped", "/usr/bin/nothing", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range readOnlyMappings([]byte(smapsFixture), tc.path) {
				got = append(got, fmt.Sprintf("%x-%x %s %d", m.start, m.end, m.perms, m.rss>>10))
			}
			if strings.Join(got, ";") != strings.Join(tc.want, ";") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// On this test binary: the call releases the read-only mappings, their
// resident size drops, and the process carries on (its code faults back in).
func TestReleaseExecutable(t *testing.T) {
	resident := func() uint64 {
		exe, err := os.Readlink("/proc/self/exe")
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile("/proc/self/smaps")
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, m := range readOnlyMappings(b, exe) {
			n += m.rss
		}
		return n
	}
	before := resident()
	res, err := ReleaseExecutable()
	if err != nil {
		t.Fatal(err)
	}
	after := resident()
	t.Logf("released %d mappings; resident %d KiB before, %d KiB right after", res.Mappings, before>>10, after>>10)
	if res.Mappings < 2 {
		t.Fatalf("released %d mappings, want text and read-only data", res.Mappings)
	}
	if after >= before {
		t.Fatalf("resident %d KiB after the release, not less than %d KiB before", after>>10, before>>10)
	}
	// Still runs: code and read-only data come back on use.
	if s := fmt.Sprintf("%s %d", strings.Repeat("x", 3), 42); s != "xxx 42" {
		t.Fatalf("got %q", s)
	}
}
