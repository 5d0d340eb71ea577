package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec"
)

// chainRelease is a release block of a chain: name, app, version and
// extra lines (after, min_gap, requires...).
func chainRelease(name, app, version, extra string) string {
	return `  release "` + name + `" {
    app     = "` + app + `"
    version = "` + version + `"
` + extra + `    artifact {
      url    = "file:///srv/a.tar.gz"
      sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
    }
    unit {
      exec_start = "{{slot_dir}}/orders"
    }
    slots {
      blue_port  = 9001
      green_port = 9002
    }
    traffic {
      listen = "0.0.0.0:9000"
    }
    health {
      check "tcp" {
        address = "127.0.0.1:{{port}}"
      }
    }
  }
`
}

func TestParseChain(t *testing.T) {
	src := "chain \"orders-format-v5\" {\n" +
		chainRelease("read-new", "orders", "5.0.0", "    requires {\n      app = \"auth\"\n      version = \">= 2.3\"\n    }\n") +
		chainRelease("write-new", "orders", "5.1.0", "    after = \"read-new\"\n    min_gap = \"1h\"\n") +
		"}\n"
	c, err := spec.ParseChain("chain.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "orders-format-v5" || len(c.Steps) != 2 {
		t.Fatalf("chain = %+v", c)
	}
	if s := c.Steps[0]; s.Release.Name != "read-new" || s.After != "" || len(s.Release.Requires) != 1 || s.Release.Requires[0] != (spec.Requirement{App: "auth", Version: ">= 2.3"}) {
		t.Errorf("step 0 = %+v", s)
	}
	if s := c.Steps[1]; s.Release.Name != "write-new" || s.After != "read-new" || s.MinGap != time.Hour || s.Release.Version != "5.1.0" {
		t.Errorf("step 1 = %+v", s)
	}
}

func TestParseChainInvalid(t *testing.T) {
	two := func(first, second string) string {
		return "chain \"c\" {\n" + chainRelease("a", "orders", "1.0.0", first) + chainRelease("b", "orders", "1.1.0", second) + "}\n"
	}
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		// A chain of one release is a release.
		{"one release", "chain \"c\" {\n" + chainRelease("a", "orders", "1.0.0", "") + "}\n",
			[]string{`chain.hcl:1:1: chain: a chain holds 2 to 10 release blocks, got 1`}},
		// Every release but the first names the one before it.
		{"missing after", two("", ""), []string{`chain.release["b"]: missing required field "after"; write after = "a"`}},
		{"wrong after", two("", "    after = \"zzz\"\n"), []string{`chain.release["b"].after: must name the release just before it, "a", got "zzz"`}},
		{"first has after", two("    after = \"b\"\n", "    after = \"a\"\n"), []string{`chain.release["a"].after: the first release of a chain starts first`}},
		{"negative gap", two("", "    after = \"a\"\n    min_gap = \"-1h\"\n"), []string{`chain.release["b"].min_gap`}},
		// A release's own errors name the release.
		{"release error", two("", "    after = \"a\"\n    converge = \"sometimes\"\n"), []string{`chain.release["b"].converge: must be one of manual, auto`}},
		// Bad constraints are spec errors naming the field.
		{"bad constraint", two("    requires {\n      app = \"auth\"\n      version = \">= two\"\n    }\n", "    after = \"a\"\n"),
			[]string{`chain.release["a"].requires[0].version: ">= two" is not a semantic version constraint`}},
		{"own app", two("    requires {\n      app = \"orders\"\n      version = \">= 1\"\n    }\n", "    after = \"a\"\n"),
			[]string{`chain.release["a"].requires[0].app: a release cannot require its own app "orders"`}},
		{"no version", two("    requires {\n      app = \"auth\"\n    }\n", "    after = \"a\"\n"),
			[]string{`chain.release["a"].requires[0]: missing required field "version"`}},
		{"no chain", chainRelease("a", "orders", "1.0.0", ""), []string{`unknown block "release"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := spec.ParseChain("chain.hcl", []byte(tc.src))
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}
