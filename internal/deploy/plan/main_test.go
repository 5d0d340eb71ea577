package plan

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// minRapidChecks is the fewest random cases each property test runs. rapid
// v1.3.0 reads its case count only from -rapid.checks (default 100), so
// TestMain raises that flag unless it was set higher. rapid divides the count
// by 5 under -short; we compensate so -short still runs minRapidChecks.
const minRapidChecks = 1000

func TestMain(m *testing.M) {
	flag.Parse()
	want := minRapidChecks
	if testing.Short() {
		want *= 5
	}
	if f := flag.Lookup("rapid.checks"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < want {
			if err := f.Value.Set(strconv.Itoa(want)); err != nil {
				panic(err)
			}
		}
	}
	os.Exit(m.Run())
}
