package footprint

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mapping is the resident size of one kind of mapping.
type Mapping struct {
	Name   string  `json:"name"`
	RSSMiB float64 `json:"rss_mib"`
	// SizeMiB is the mapping's virtual size.
	SizeMiB float64 `json:"size_mib"`
}

// Mappings groups /proc/PID/smaps by (path or [anon], permissions): for a
// Go binary r-xp is the code, r--p rodata and the pcln tables, rw-p data.
func Mappings(pid int) ([]Mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := map[string]int{}
	var out []Mapping
	cur := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":") {
			name := "[anon]"
			if len(fs) >= 6 {
				name = fs[5]
				if i := strings.LastIndexByte(name, '/'); i >= 0 && !strings.HasPrefix(name, "[") {
					name = name[i+1:]
				}
			}
			key := name + " " + fs[1]
			i, ok := idx[key]
			if !ok {
				i = len(out)
				idx[key] = i
				out = append(out, Mapping{Name: key})
			}
			cur = i
			continue
		}
		if cur < 0 || len(fs) < 2 {
			continue
		}
		n, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "Rss:":
			out[cur].RSSMiB += n / 1024
		case "Size:":
			out[cur].SizeMiB += n / 1024
		}
	}
	return out, sc.Err()
}
