package slot

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/fsutil"
)

// ErrChecksum is returned (wrapped) when an artifact's sha256 differs from
// the one in the release spec. Nothing of the artifact is used then.
var ErrChecksum = errors.New("artifact checksum mismatch")

// ErrUnsafeArchive is returned (wrapped) when a tarball holds an entry
// that would land outside the slot directory or is a device file.
var ErrUnsafeArchive = errors.New("unsafe archive entry")

// Default staging limits (the agent config's limits block sets others).
// A var, not a const, so tests can lower them.
var (
	// maxArtifactBytes bounds a download (and a file:// copy).
	maxArtifactBytes int64 = 2 << 30
	// maxUnpackedBytes bounds a tarball's uncompressed stream, so the sum
	// of its files too (a gzip bomb must not fill the disk).
	maxUnpackedBytes int64 = 2 << 30
	// maxEntries bounds the number of tar entries.
	maxEntries = 200_000
	// httpTimeout bounds a whole download, headers to last byte.
	httpTimeout = 15 * time.Minute
	// maxRedirects bounds the redirect hops of one download.
	maxRedirects = 5
)

// ErrRedirect is returned (wrapped) when a download is redirected where
// the host's policy does not allow artifacts from, too many times, or from
// https to plain http.
var ErrRedirect = errors.New("artifact redirect refused")

// URLCheck says whether an artifact may be fetched from rawURL; the agent
// passes its policy (artifact_prefixes). It is called for the order's URL
// and for every redirect hop before it is requested.
type URLCheck func(rawURL string) error

// ErrArtifactTooLarge is returned (wrapped) when an artifact's download
// or its unpacked content passes a limit; the error names the limit.
var ErrArtifactTooLarge = errors.New("artifact too large")

// Limits bound what staging one artifact may read and write. Zero fields
// take the defaults (2 GiB each).
type Limits struct {
	// MaxDownloadBytes bounds the artifact as fetched (the agent config's
	// limits.max_artifact_download).
	MaxDownloadBytes int64
	// MaxUnpackedBytes bounds a .tar.gz artifact's uncompressed tar stream
	// (file contents and headers; limits.max_artifact_unpacked). Reading
	// stops there: a gzip bomb costs at most this much CPU and disk.
	MaxUnpackedBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxDownloadBytes <= 0 {
		l.MaxDownloadBytes = maxArtifactBytes
	}
	if l.MaxUnpackedBytes <= 0 {
		l.MaxUnpackedBytes = maxUnpackedBytes
	}
	return l
}

// artifactName is the file a non-archive artifact becomes in its slot.
const artifactName = "artifact"

// Stage fetches the artifact at rawURL (http://, https:// or file://),
// verifies its sha256 and installs it as dir. A .tar.gz/.tgz artifact is
// unpacked into dir; anything else becomes dir/artifact (mode 0755).
//
// The checksum is verified on a private temporary copy before anything is
// unpacked or used. The new content is built in a fresh directory next to
// dir and renamed into place only when complete, so a failed stage never
// leaves half a slot; a previous dir is replaced as a whole.
//
// Stage uses no URL policy and the default Limits; StageWith takes both.
func Stage(ctx context.Context, rawURL, sha256Hex, dir string) error {
	return StageWith(ctx, rawURL, sha256Hex, dir, StageOptions{})
}

// StageOptions are what a host's policy and config add to Stage.
type StageOptions struct {
	// Allow, when set, must accept the URL and every redirect hop of its
	// download before it is fetched (the agent's artifact_prefixes).
	Allow URLCheck
	// Limits bound the download and the unpacked size; zero fields take
	// the defaults (2 GiB each). Past a limit reading stops and the stage
	// fails with ErrArtifactTooLarge, naming the limit.
	Limits Limits
}

// StageWith is Stage with the host's URL policy and size limits. Errors
// show URLs with their credentials redacted.
func StageWith(ctx context.Context, rawURL, sha256Hex, dir string, opt StageOptions) error {
	lim := opt.Limits.withDefaults()
	want := strings.ToLower(strings.TrimSpace(sha256Hex))
	if len(want) != 64 {
		return fmt.Errorf("artifact sha256 %q: want 64 hex digits", sha256Hex)
	}
	if _, err := hex.DecodeString(want); err != nil {
		return fmt.Errorf("artifact sha256 %q: not hex", sha256Hex)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("artifact url %q: parse error", redactURL(rawURL))
	}
	if opt.Allow != nil {
		if err := opt.Allow(rawURL); err != nil {
			return err
		}
	}
	// From here on rawURL is only shown (errors, reports, logs), never
	// fetched (fetch uses u): hide credentials that old specs may carry.
	rawURL = redactURL(rawURL)
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("stage: %w", err)
	}

	// 1. Fetch into a temp file next to the slot, hashing as we go.
	tmp, err := os.CreateTemp(parent, ".download-*")
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if err := fetch(ctx, u, io.MultiWriter(tmp, h), opt.Allow, lim.MaxDownloadBytes); err != nil {
		return fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		// Only the expected digest: the actual one would tell whoever
		// reads events (read tokens) the sha256 of any file the agent can
		// read, through a file:// URL.
		return fmt.Errorf("%w: %s: expected sha256 %s", ErrChecksum, rawURL, want)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("stage: %w", err)
	}

	// 2. Build the new slot content in a fresh directory.
	build, err := os.MkdirTemp(parent, ".stage-"+filepath.Base(dir)+"-*")
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	defer os.RemoveAll(build) // no-op after the rename below
	if err := os.Chmod(build, 0o755); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	p := strings.ToLower(u.Path)
	if strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz") {
		if err := untar(tmp, build, lim.MaxUnpackedBytes); err != nil {
			return err
		}
	} else {
		if err := copyFile(tmp, filepath.Join(build, artifactName), 0o755); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
	}

	// 3. Swap it into place: old aside, new in, old removed.
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = build + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("stage: move old slot dir aside: %w", err)
		}
	}
	if err := os.Rename(build, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("stage: %w", err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return fsutil.SyncDir(parent)
}

func fetch(ctx context.Context, u *url.URL, w io.Writer, allow URLCheck, limit int64) error {
	var body io.Reader
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("file url with host %q: only file:///path is supported", u.Host)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		body = f
	case "http", "https":
		ctx, cancel := context.WithTimeout(ctx, httpTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		client := &http.Client{CheckRedirect: checkRedirect(allow)}
		resp, err := client.Do(req)
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				// url.Error repeats the URL, credentials and all.
				return fmt.Errorf("%s %s: %w", uerr.Op, redactURL(uerr.URL), uerr.Err)
			}
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("http status %s", resp.Status)
		}
		if resp.ContentLength > limit {
			return fmt.Errorf("%w: %d bytes, more than limits.max_artifact_download (%d bytes)", ErrArtifactTooLarge, resp.ContentLength, limit)
		}
		body = resp.Body
	default:
		return fmt.Errorf("unsupported scheme %q (want http, https or file)", u.Scheme)
	}
	n, err := io.Copy(w, io.LimitReader(body, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("%w: larger than limits.max_artifact_download (%d bytes)", ErrArtifactTooLarge, limit)
	}
	return nil
}

// checkRedirect bounds a download's redirects: at most maxRedirects hops,
// never from https down to http, and every hop must pass allow before it
// is requested, so a redirect off the allowed prefixes fetches nothing.
func checkRedirect(allow URLCheck) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRedirect, maxRedirects)
		}
		if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: from https to %s", ErrRedirect, redactURL(req.URL.String()))
		}
		if allow != nil {
			if err := allow(req.URL.String()); err != nil {
				return fmt.Errorf("%w: to %s: %v", ErrRedirect, redactURL(req.URL.String()), err)
			}
		}
		return nil
	}
}

// redactURL hides the credentials of a URL, which need not parse:
// "user:pw@" becomes "user:xxxxx@" (as url.URL.Redacted) and a bare
// "token@" becomes "xxxxx@". (spec.RedactURL does the same for the
// coordinator; slot does not import spec.)
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
				return raw[:i+3] + rest[:c+1] + "xxxxx" + rest[at:]
			}
			return raw[:i+3] + "xxxxx" + rest[at:]
		}
	}
	return raw
}

// limitedReader reads at most limit bytes from r; reading more fails
// with ErrArtifactTooLarge instead of returning io.EOF, so a truncated
// stream can never pass for a complete one.
type limitedReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells "exactly at the limit" from "past it".
		var b [1]byte
		if n, _ := l.r.Read(b[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("%w: unpacks to more than limits.max_artifact_unpacked (%d bytes); stopped reading there", ErrArtifactTooLarge, l.limit)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// untar unpacks a gzipped tarball into dir (a fresh, empty directory).
// Every entry is checked before it is written: its cleaned name must stay
// inside dir and must not pass through a symlink the archive created;
// symlink targets and hardlink sources must stay inside too; device files
// and FIFOs are refused. Writes go through an os.Root, which refuses to
// follow anything out of dir even if a check here were wrong.
//
// At most maxUnpacked bytes of uncompressed tar stream are read: entries
// whose declared sizes add up to more are refused before they are
// written, and data the archive skips (a directory entry with a size, say)
// counts too.
func untar(r io.Reader, dir string, maxUnpacked int64) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer gz.Close()
	// gzip.Reader reads concatenated members (multistream) to the end;
	// the limit covers them all.
	stream := &limitedReader{r: gz, left: maxUnpacked, limit: maxUnpacked}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()

	tr := tar.NewReader(stream)
	symlinks := map[string]bool{}
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		if n >= maxEntries {
			return fmt.Errorf("unpack: more than %d entries", maxEntries)
		}
		name, err := entryPath(hdr.Name)
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrUnsafeArchive, hdr.Name, err)
		}
		if name == "." {
			continue
		}
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if symlinks[p] {
				return fmt.Errorf("%w: %q: path goes through symlink %q", ErrUnsafeArchive, hdr.Name, p)
			}
		}
		if dirOf := path.Dir(name); dirOf != "." {
			if err := root.MkdirAll(dirOf, 0o755); err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
		}
		// A later entry replaces an earlier one of the same name.
		_ = root.RemoveAll(name)
		delete(symlinks, name)
		mode := hdr.FileInfo().Mode().Perm() // no setuid/setgid/sticky
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
		//lint:ignore SA1019 TypeRegA still appears in archives written by old tools
		case tar.TypeReg, tar.TypeRegA:
			total += hdr.Size
			if hdr.Size < 0 || total > maxUnpacked {
				return fmt.Errorf("unpack %q: %w: files add up to more than limits.max_artifact_unpacked (%d bytes)", hdr.Name, ErrArtifactTooLarge, maxUnpacked)
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, io.LimitReader(tr, hdr.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if path.IsAbs(target) {
				return fmt.Errorf("%w: %q: absolute symlink target %q", ErrUnsafeArchive, hdr.Name, target)
			}
			if _, err := entryPath(path.Join(path.Dir(name), target)); err != nil {
				return fmt.Errorf("%w: %q: symlink target %q escapes the slot", ErrUnsafeArchive, hdr.Name, target)
			}
			// The textual check above cannot see through other symlinks:
			// "d/s -> .." then "t -> d/s/.." resolves outside. A ".." after a
			// name is refused outright.
			if err := climbsOnlyFirst(target); err != nil {
				return fmt.Errorf("%w: %q: symlink target %q: %v", ErrUnsafeArchive, hdr.Name, target, err)
			}
			if err := root.Symlink(target, name); err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
			symlinks[name] = true
		case tar.TypeLink:
			src, err := entryPath(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("%w: %q: hardlink source %q: %v", ErrUnsafeArchive, hdr.Name, hdr.Linkname, err)
			}
			// A hard link to a symlink would copy the symlink elsewhere in
			// the slot, where its relative target may point outside.
			if fi, err := root.Lstat(src); err != nil {
				return fmt.Errorf("unpack %q: hardlink source: %w", hdr.Name, err)
			} else if !fi.Mode().IsRegular() {
				return fmt.Errorf("%w: %q: hardlink source %q is not a regular file", ErrUnsafeArchive, hdr.Name, hdr.Linkname)
			}
			if err := root.Link(src, name); err != nil {
				return fmt.Errorf("unpack %q: %w", hdr.Name, err)
			}
		case tar.TypeXGlobalHeader:
			// pax metadata, nothing to write
		default:
			return fmt.Errorf("%w: %q: entry type %q not allowed (devices, FIFOs)", ErrUnsafeArchive, hdr.Name, string(hdr.Typeflag))
		}
	}
}

// entryPath cleans an archive path and refuses absolute paths and paths
// that climb out of the archive root.
func entryPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if path.IsAbs(name) || strings.HasPrefix(name, `\`) || filepath.VolumeName(name) != "" {
		return "", errors.New("absolute path")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("path escapes the slot directory")
	}
	return c, nil
}

func copyFile(src io.Reader, dst string, mode os.FileMode) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask must not strip the x bit
		f.Close()
		return err
	}
	return f.Close()
}

// climbsOnlyFirst accepts a relative symlink target only if every ".."
// comes before the first name ("../../x" yes, "a/../x" no).
func climbsOnlyFirst(target string) error {
	named := false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if named {
				return errors.New(`".." after a name`)
			}
		default:
			named = true
		}
	}
	return nil
}
