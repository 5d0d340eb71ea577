//go:build linux

package slot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSecurityChecksumNoDigestLeak (issue 11 item 5): a release pointing
// its artifact at any file the agent can read (file:///etc/shadow) with a
// wrong sha256 must not learn that file's digest: the error, and the
// FAILED progress reason that becomes a release event (visible to read
// tokens), say "checksum mismatch" with the expected digest only.
func TestSecurityChecksumNoDigestLeak(t *testing.T) {
	t.Parallel()
	secret := []byte("root:$y$j9T$secret-hash:19000:0:99999:7:::\n")
	p := writeFile(t, "shadow", secret)
	actual := sha256Hex(secret)
	wrong := strings.Repeat("ab", 32)

	err := Stage(context.Background(), "file://"+p, wrong, filepath.Join(t.TempDir(), "blue"))
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("err = %v, want ErrChecksum with the expected digest", err)
	}
	if strings.Contains(err.Error(), actual) {
		t.Fatalf("the error leaks the fetched file's sha256: %v", err)
	}

	// Through a swap: the reason reported to the coordinator.
	e := newEnv(t)
	spec := e.spec("v1")
	spec.Artifact = &rollwavev1.Artifact{Url: "file://" + p, Sha256: wrong}
	if err := e.swap(1, spec); !errors.Is(err, ErrChecksum) {
		t.Fatalf("swap: %v, want ErrChecksum", err)
	}
	ev := e.prog.last(1)
	if ev.state != stFailed || !strings.Contains(ev.reason, "checksum mismatch") || strings.Contains(ev.reason, actual) {
		t.Fatalf("progress reason %q: want FAILED with checksum mismatch and without the digest %s", ev.reason, actual)
	}
}

// bomb is a tar.gz whose entries hold size bytes of zeros each: a few
// KiB compressed, size×len(names) unpacked.
func bomb(t *testing.T, size int64, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	zeros := make([]byte, 64<<10)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: size}); err != nil {
			t.Fatal(err)
		}
		for left := size; left > 0; {
			chunk := min(left, int64(len(zeros)))
			if _, err := tw.Write(zeros[:chunk]); err != nil {
				t.Fatal(err)
			}
			left -= chunk
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSecurityArtifactSizeLimits (issue 11 item 12, gzip bombs): the
// default unpacked limit is at most 2 GiB (it was 8 GiB); a configured
// limit stops a gzip bomb there, whether one file claims too much, many
// files add up, or only tar headers fill the stream; the download limit
// stops a too-large artifact. Each error names the limit's setting, and
// nothing of the artifact is left in or next to the slot.
func TestSecurityArtifactSizeLimits(t *testing.T) {
	t.Parallel()
	if d := (Limits{}).withDefaults(); d.MaxUnpackedBytes > 2<<30 || d.MaxDownloadBytes > 2<<30 {
		t.Fatalf("default limits %+v: want at most 2 GiB each", d)
	}
	const limit = 1 << 20
	many := make([]string, 3000) // 3000 empty files: 1.5 MB of headers, 0 bytes of content
	for i := range many {
		many[i] = fmt.Sprintf("f%04d", i)
	}
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		// One file of 64 MiB of zeros (~64 KiB compressed).
		{"one big file", bomb(t, 64<<20, "zeros"), "limits.max_artifact_unpacked"},
		// Eight files of 256 KiB: each under the limit, together over it.
		{"files add up", bomb(t, 256<<10, "a", "b", "c", "d", "e", "f", "g", "h"), "limits.max_artifact_unpacked"},
		// Only headers: declared sizes are 0, the stream is not.
		{"headers only", bomb(t, 0, many...), "limits.max_artifact_unpacked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.archive) >= limit {
				t.Fatalf("test bomb is %d bytes compressed; it should be small", len(tc.archive))
			}
			p := writeFile(t, "bomb.tar.gz", tc.archive)
			parent := t.TempDir()
			dir := filepath.Join(parent, "blue")
			err := StageWith(context.Background(), "file://"+p, sha256Hex(tc.archive), dir, StageOptions{Limits: Limits{MaxUnpackedBytes: limit}})
			if !errors.Is(err, ErrArtifactTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrArtifactTooLarge naming %s", err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("slot dir exists after a refused artifact: %v", err)
			}
			assertNoLeftovers(t, parent)
		})
	}
	// Under the limit, the same kind of archive unpacks.
	ok := bomb(t, 100<<10, "a", "b")
	p := writeFile(t, "ok.tar.gz", ok)
	if err := StageWith(context.Background(), "file://"+p, sha256Hex(ok), filepath.Join(t.TempDir(), "blue"), StageOptions{Limits: Limits{MaxUnpackedBytes: limit}}); err != nil {
		t.Fatalf("archive under the limit: %v", err)
	}

	// The download limit.
	big := bytes.Repeat([]byte("x"), 4096)
	p = writeFile(t, "big.bin", big)
	err := StageWith(context.Background(), "file://"+p, sha256Hex(big), filepath.Join(t.TempDir(), "blue"), StageOptions{Limits: Limits{MaxDownloadBytes: 4095}})
	if !errors.Is(err, ErrArtifactTooLarge) || !strings.Contains(err.Error(), "limits.max_artifact_download") {
		t.Fatalf("download over the limit: %v", err)
	}

	// The manager passes its configured limits to staging.
	e := newEnv(t)
	e.m.cfg.Limits = Limits{MaxDownloadBytes: 10}
	if err := e.swap(1, e.spec("v1")); !errors.Is(err, ErrArtifactTooLarge) {
		t.Fatalf("swap with a 10-byte download limit: %v, want ErrArtifactTooLarge", err)
	}
}
