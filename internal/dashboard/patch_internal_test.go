package dashboard

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPatchFor(t *testing.T) {
	tile := func(id, class string) string {
		return `<a class="tile ` + class + `" id="` + id + `" data-patch title="` + strings.Repeat("x", 40) + `"></a>`
	}
	page := func(n string, tiles ...string) string {
		return `<section id="fleet"><h1>Fleet <small>` + n + `</small></h1><table><tr><td id="n-c" data-patch>3 <input type="hidden" value="v"></td><td>` +
			strings.Join(tiles, "") + `</td></tr></table></section>`
	}
	base := page("3", tile("h1", "v0"), tile("h2", "v0"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0"))
	cases := []struct {
		name string
		last string
		next string
		want []string // ids patched; nil = send the whole view
	}{
		// One tile changed: only it goes.
		{"one tile", base, page("3", tile("h1", "v0"), tile("h2", "v1"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0")), []string{"h2"}},
		// Text outside the marked elements changed: the whole view.
		{"skeleton", base, page("4", tile("h1", "v0"), tile("h2", "v1"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0")), nil},
		// A host joined: the skeleton has one more placeholder.
		{"new tile", base, page("3", tile("h1", "v0"), tile("h2", "v0"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0"), tile("h6", "v0")), nil},
		// Hosts swapped places: the skeleton's keys differ.
		{"reordered", base, page("3", tile("h2", "v0"), tile("h1", "v0"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0")), nil},
		// Two marked elements with one id cannot be patched by id.
		{"duplicate id", base, page("3", tile("h1", "v0"), tile("h1", "v1"), tile("h3", "v0"), tile("h4", "v0"), tile("h5", "v0")), nil},
		// A marked element without an id.
		{"no id", base, strings.Replace(base, `id="h3" `, ``, 1), nil},
		// Most of the view changed: the view is smaller than its patch.
		{"most changed", base, page("3", tile("h1", "v1"), tile("h2", "v1"), tile("h3", "v1"), tile("h4", "v1"), tile("h5", "v0")), nil},
		// The first event of a stream is always the view.
		{"first", "", base, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, ok := patchFor(tc.last, tc.next)
			if tc.want == nil {
				if ok {
					t.Fatalf("patched %s; want the whole view", data)
				}
				return
			}
			if !ok {
				t.Fatal("no patch; want one")
			}
			var items [][2]string
			if err := json.Unmarshal([]byte(data), &items); err != nil {
				t.Fatalf("patch %q: %v", data, err)
			}
			var ids []string
			for _, it := range items {
				ids = append(ids, it[0])
				if !strings.Contains(tc.next, it[1]) || !strings.HasPrefix(it[1], "<a ") || !strings.HasSuffix(it[1], "</a>") {
					t.Errorf("patch element %q is not the element as rendered", it[1])
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("patched %v, want %v", ids, tc.want)
			}
		})
	}
	// A marked element holding a void element (no end tag) ends at its
	// own end tag.
	_, blocks, _, ok := splitBlocks(base)
	if !ok || blocks["n-c"] != `<td id="n-c" data-patch>3 <input type="hidden" value="v"></td>` {
		t.Errorf("block n-c = %q (ok %v)", blocks["n-c"], ok)
	}
}
