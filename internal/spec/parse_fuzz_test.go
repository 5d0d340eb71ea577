package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds every file under testdata/<dirs> to the corpus, paired with
// whether the parser should treat it as JSON.
func addSeeds(f *testing.F, dirs ...string) {
	f.Helper()
	for _, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src, strings.HasSuffix(p, ".json"))
		}
	}
	f.Add([]byte(""), false)
	f.Add([]byte("{}"), true)
	f.Add([]byte(`release "x" {`), false)
	f.Add([]byte(`release "x" { app = 1 }`), false)
	f.Add([]byte(`{"release": {"x": {"app": []}}}`), true)
}

func fuzzName(json bool) string {
	if json {
		return "fuzz.json"
	}
	return "fuzz.hcl"
}

// checkDiagnostics asserts that a parse failure is a non-empty Diagnostics
// whose every entry names the file and a 1-based position.
func checkDiagnostics(t *testing.T, err error, file string) {
	t.Helper()
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error is %T, not Diagnostics: %v", err, err)
	}
	if len(ds) == 0 {
		t.Fatalf("empty Diagnostics returned as an error")
	}
	for _, d := range ds {
		if d.File != file || d.Line < 1 || d.Column < 1 {
			t.Fatalf("diagnostic without a position: %#v", d)
		}
		if d.Message == "" {
			t.Fatalf("diagnostic without a message: %#v", d)
		}
	}
}

// Any input either parses into a Release that passes Validate, or fails
// with Diagnostics that carry file:line:column.
func FuzzParseRelease(f *testing.F) {
	addSeeds(f, "good", "bad")
	example, err := os.ReadFile(designExample)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, false)
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := fuzzName(json)
		r, err := ParseRelease(name, src)
		if err != nil {
			if r != nil {
				t.Fatalf("ParseRelease returned both a release and an error: %v", err)
			}
			checkDiagnostics(t, err, name)
			return
		}
		if r == nil {
			t.Fatal("ParseRelease returned neither a release nor an error")
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed release fails Validate: %v", err)
		}
	})
}

func FuzzParseServerConfig(f *testing.F) {
	addSeeds(f, "config")
	f.Add([]byte(`bootstrap_expect = -1`), false)
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := fuzzName(json)
		c, err := ParseServerConfig(name, src)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseServerConfig returned both a config and an error: %v", err)
			}
			checkDiagnostics(t, err, name)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed server config fails Validate: %v", err)
		}
	})
}

func FuzzParseAgentConfig(f *testing.F) {
	addSeeds(f, "config")
	f.Add([]byte(`labels = { a = "b" }`), false)
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := fuzzName(json)
		c, err := ParseAgentConfig(name, src)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseAgentConfig returned both a config and an error: %v", err)
			}
			checkDiagnostics(t, err, name)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed agent config fails Validate: %v", err)
		}
	})
}
