package dashboard

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"golang.org/x/net/html"
)

// patchAttr marks an element (with an id) that a live update may replace
// on its own: when a view changes only inside such elements, the stream
// sends just those elements ("patch") instead of the whole view. The
// fleet's tiles carry it: a rollout step that moves 300 of 1,000 hosts
// sends 300 tiles, not the grid.
const patchAttr = "data-patch"

// voidElements have no end tag.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// splitBlocks cuts a rendered fragment into its skeleton and its
// patchable elements (the outermost ones marked with patchAttr), each
// keyed by its id and replaced in the skeleton by a placeholder. ok is
// false when the fragment does not tokenize cleanly or a marked element
// has no id or a repeated one; the caller then sends the whole view.
func splitBlocks(frag string) (skeleton string, blocks map[string]string, order []string, ok bool) {
	z := html.NewTokenizer(strings.NewReader(frag))
	var skel strings.Builder
	blocks = map[string]string{}
	pos, depth, start := 0, 0, 0
	key := ""
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			// io.EOF at the end; anything else is a fragment we do not cut.
			return skel.String(), blocks, order, z.Err() == io.EOF && depth == 0 && pos == len(frag)
		}
		raw := len(z.Raw())
		switch {
		case depth > 0:
			switch tt {
			case html.StartTagToken:
				if name, _ := z.TagName(); !voidElements[string(name)] {
					depth++
				}
			case html.EndTagToken:
				depth--
			}
			if depth == 0 {
				blocks[key] = frag[start : pos+raw]
				order = append(order, key)
				skel.WriteString("\x00" + key + "\x00")
			}
		case tt == html.StartTagToken:
			name, hasAttr := z.TagName()
			id, marked := "", false
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "id":
					id = string(v)
				case patchAttr:
					marked = true
				}
			}
			if !marked {
				skel.WriteString(frag[pos : pos+raw])
				break
			}
			if _, dup := blocks[id]; id == "" || dup || voidElements[string(name)] {
				return "", nil, nil, false
			}
			key, start, depth = id, pos, 1
		default:
			skel.WriteString(frag[pos : pos+raw])
		}
		pos += raw
	}
}

// patchFor returns the "patch" event's data that turns the view last
// into next: a JSON list of [id, outer HTML] for each marked element that
// changed. ok is false when anything outside the marked elements changed
// (or the patch would not be smaller than the view): send the view.
func patchFor(last, next string) (data string, ok bool) {
	if last == "" {
		return "", false
	}
	s1, b1, _, ok1 := splitBlocks(last)
	s2, b2, order, ok2 := splitBlocks(next)
	if !ok1 || !ok2 || s1 != s2 || len(b1) != len(b2) {
		return "", false
	}
	var changed [][2]string
	for _, k := range order {
		old, seen := b1[k]
		if !seen {
			return "", false
		}
		if old != b2[k] {
			changed = append(changed, [2]string{k, b2[k]})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(changed); err != nil || buf.Len() >= len(next)/2 {
		return "", false
	}
	return strings.TrimSuffix(buf.String(), "\n"), true
}
