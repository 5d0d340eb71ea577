package spec_test

import (
	"encoding/json"
	"testing"

	"github.com/rollwave/rollwave/internal/spec"
)

func TestParseChainJSON(t *testing.T) {
	rel := func(version string, extra map[string]any) map[string]any {
		m := map[string]any{
			"app": "orders", "version": version,
			"artifact": map[string]any{"url": "file:///srv/a.tar.gz", "sha256": "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"},
			"unit":     map[string]any{"exec_start": "{{slot_dir}}/orders"},
			"slots":    map[string]any{"blue_port": 9001, "green_port": 9002},
			"traffic":  map[string]any{"listen": "0.0.0.0:9000"},
			"health":   map[string]any{"check": map[string]any{"tcp": map[string]any{"address": "127.0.0.1:{{port}}"}}},
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	src, _ := json.Marshal(map[string]any{"chain": map[string]any{"orders-format-v5": map[string]any{"release": map[string]any{
		"read-new":  rel("5.0.0", map[string]any{"requires": []any{map[string]any{"app": "auth", "version": ">= 2.3"}}}),
		"write-new": rel("5.1.0", map[string]any{"after": "read-new", "min_gap": "1h"}),
	}}}})
	c, err := spec.ParseChain("chain.json", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Steps) != 2 || c.Steps[0].Release.Name != "read-new" || c.Steps[1].After != "read-new" || len(c.Steps[0].Release.Requires) != 1 {
		t.Fatalf("chain = %+v", c)
	}
}
