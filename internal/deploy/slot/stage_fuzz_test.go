package slot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzTarEntry is one entry of a seed archive.
type fuzzTarEntry struct {
	name, link string
	typ        byte
	body       string
}

func fuzzTarGz(f *testing.F, entries ...fuzzTarEntry) []byte {
	f.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			f.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				f.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// within reports whether p is dir or below it (both cleaned, absolute).
func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// Arbitrary tar.gz bytes never produce anything outside the slot
// directory: untar runs into outer/slot, and afterwards outer holds
// nothing but slot, and no symlink inside slot resolves outside it.
func FuzzStageTarGz(f *testing.F) {
	const maxUnpacked = 1 << 20 // a small gzip bomb must not fill the disk

	reg, dir, sym, lnk := byte(tar.TypeReg), byte(tar.TypeDir), byte(tar.TypeSymlink), byte(tar.TypeLink)
	seeds := [][]fuzzTarEntry{
		{{name: "bin/", typ: dir}, {name: "bin/app", typ: reg, body: "#!/bin/sh\n"}},
		{{name: "../escape", typ: reg, body: "x"}},
		{{name: "/abs", typ: reg, body: "x"}},
		{{name: "a/../../b", typ: reg, body: "x"}},
		{{name: "up", link: "..", typ: sym}, {name: "up/escape", typ: reg, body: "x"}},
		{{name: "l", link: "../../etc", typ: sym}},
		{{name: "l", link: "/etc/passwd", typ: sym}},
		{{name: "d/l", link: "../x", typ: sym}, {name: "d/l", typ: reg, body: "replaced"}},
		{{name: "f", typ: reg, body: "x"}, {name: "h", link: "f", typ: lnk}},
		{{name: "h", link: "../outside", typ: lnk}},
		{{name: "dev", typ: tar.TypeChar}},
		{{name: "self", link: "self", typ: sym}, {name: "self/x", typ: reg, body: "x"}},
		{{name: "a", link: ".", typ: sym}, {name: "a/a/b", typ: reg, body: "x"}},
		{{name: "d/s", link: "..", typ: sym}, {name: "t", link: "d/s/..", typ: sym}},
		{{name: "a/b/s", link: "../../x", typ: sym}, {name: "t", link: "a/b/s", typ: lnk}},
	}
	for _, s := range seeds {
		f.Add(fuzzTarGz(f, s...))
	}
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})

	f.Fuzz(func(t *testing.T, archive []byte) {
		if len(archive) > 1<<16 {
			t.Skip("input too large")
		}
		outer, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		slotDir := filepath.Join(outer, "slot")
		if err := os.Mkdir(slotDir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = untar(bytes.NewReader(archive), slotDir, maxUnpacked) // errors are fine; escapes are not

		err = filepath.WalkDir(outer, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == outer {
				return nil
			}
			if !within(slotDir, p) {
				t.Errorf("archive wrote %s outside the slot directory", p)
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(p)
				if err != nil {
					t.Errorf("readlink %s: %v", p, err)
					return nil
				}
				if filepath.IsAbs(target) {
					t.Errorf("symlink %s has absolute target %q", p, target)
				} else if resolved := filepath.Clean(filepath.Join(filepath.Dir(p), target)); !within(slotDir, resolved) {
					t.Errorf("symlink %s -> %q points outside the slot directory", p, target)
				} else if real, err := filepath.EvalSymlinks(p); err == nil && !within(slotDir, real) {
					// Lexically inside, but resolving through other links lands outside.
					t.Errorf("symlink %s -> %q resolves to %s, outside the slot directory", p, target, real)
				}
			}
			if d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0 {
				t.Errorf("archive created special file %s (%v)", p, d.Type())
			}
			if info, err := os.Lstat(p); err == nil && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("archive created setuid/setgid file %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
	})
}
