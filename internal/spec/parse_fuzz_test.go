package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
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
	// Deep nesting of every kind the pre-scan counts, a little past the
	// limit so that the fuzzer mutates around it (issue 11: 100,000 '('
	// overflowed the stack), and expensive expressions.
	deep := speccore.MaxNestingDepth + 2
	f.Add([]byte(strings.Repeat("[", deep)), true)
	f.Add([]byte(strings.Repeat(`{"a":`, deep)), true)
	f.Add([]byte(`{"release": {"x": {"app": `+strings.Repeat("[", deep)+strings.Repeat("]", deep)+`}}}`), true)
	f.Add([]byte("a = "+strings.Repeat("(", deep)+"1"+strings.Repeat(")", deep)), false)
	f.Add([]byte(`release "x" { app = `+strings.Repeat("[", deep)+strings.Repeat("]", deep)+" }"), false)
	f.Add([]byte("a = "+strings.Repeat("{a=", deep)+strings.Repeat("}", deep)), false)
	f.Add([]byte(strings.Repeat("b {\n", deep)+strings.Repeat("}\n", deep)), false)
	f.Add([]byte("a = "+strings.Repeat(`"${`, deep)+strings.Repeat(`}"`, deep)), false)
	f.Add([]byte(`a = "`+strings.Repeat("%{if true}", deep)+strings.Repeat("%{endif}", deep)+`"`), false)
	f.Add([]byte("a = <<EOT\n"+strings.Repeat("%{if true}\n", deep)+"EOT\n"), false)
	f.Add([]byte("a = "+strings.Repeat("-", deep)+"1"), false)
	f.Add([]byte("a = "+strings.Repeat("!", deep)+"true"), false)
	f.Add([]byte("a = "+strings.Repeat("1+", speccore.MaxOperators+1)+"1"), false)
	f.Add([]byte("a = [1]"+strings.Repeat("[0]", speccore.MaxOperators+1)), false)
	f.Add([]byte(`a = [for x in [1, 2]: [for y in [3]: x]]`), false)
	f.Add([]byte(`a = "%{for x in [1, 2]}${x}%{endfor}"`), false)
	f.Add([]byte(`a = 1e100000000`), false)
	f.Add([]byte(`{"a": 1e-100000000}`), true)
	f.Add([]byte(`a = 1e300 * 1e300 * 1e300`), false)
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
	var ds speccore.Diagnostics
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
		c, err := speccore.ParseAgentConfig(name, src)
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
