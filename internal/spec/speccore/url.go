package speccore

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Artifact URLs: one parser and one comparison, shared by release spec
// validation (coordinator side) and the agent's artifact_prefixes policy
// (host side), so what the coordinator accepts is what the host checks.
//
// URLs are compared by component, never as strings: scheme, host and port
// must be equal, and the path must lie inside the prefix's path segment by
// segment. Paths with dot segments (also percent-encoded: %2e%2e) and
// percent-encoded slashes or backslashes are refused outright rather than
// cleaned: "/builds/link/../x" means different files to path.Clean, to the
// kernel (through a symlink) and to an HTTP server, so no cleaning can
// promise that the checked path is the fetched one.

// ArtifactSchemes are the schemes an artifact may be fetched with.
var ArtifactSchemes = []string{"http", "https", "file"}

// ErrArtifactURL is wrapped by every artifact URL refusal.
var ErrArtifactURL = errors.New("invalid artifact URL")

// maxArtifactURLBytes bounds an artifact URL or prefix.
const maxArtifactURLBytes = 4096

// ArtifactURL is an artifact URL reduced to the parts that are compared.
type ArtifactURL struct {
	// Scheme is "http", "https" or "file", lower case.
	Scheme string
	// Host is the host name or IP in lower case without a trailing dot;
	// empty for file URLs ("localhost" is treated as empty).
	Host string
	// Port is explicit or the scheme's default ("80", "443"); empty for
	// file URLs.
	Port string
	// Path is the decoded path, absolute, with repeated slashes collapsed.
	Path string
}

// ParseArtifactURL parses raw as an artifact URL (http://, https:// or
// file:///) and refuses what no host should fetch: user credentials
// (user:pass@), a file URL naming a remote host, a missing host or path,
// dot segments and encoded slashes. Errors wrap ErrArtifactURL; they show
// the URL with any credentials redacted.
func ParseArtifactURL(raw string) (ArtifactURL, *url.URL, error) {
	fail := func(format string, args ...any) (ArtifactURL, *url.URL, error) {
		return ArtifactURL{}, nil, fmt.Errorf("%w: %s", ErrArtifactURL, fmt.Sprintf(format, args...))
	}
	shown := RedactURL(raw)
	if len(raw) > maxArtifactURLBytes {
		return fail("URL is %d bytes, at most %d", len(raw), maxArtifactURLBytes)
	}
	if !utf8.ValidString(raw) || strings.IndexFunc(raw, IsCtl) >= 0 {
		return fail("URL %q holds control characters or invalid UTF-8", shown)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("expected a URL such as https://artifacts.internal/app/1.0.tar.gz, got %q", shown)
	}
	a := ArtifactURL{Scheme: strings.ToLower(u.Scheme)}
	switch {
	case a.Scheme == "" || u.Opaque != "":
		return fail("expected an absolute URL such as https://artifacts.internal/app/1.0.tar.gz or file:///srv/app.tar.gz, got %q", shown)
	case !isArtifactScheme(a.Scheme):
		return fail("URL scheme must be one of %s, got %q", strings.Join(ArtifactSchemes, ", "), shown)
	case u.User != nil:
		return fail("URL %q carries credentials (user:password@); artifact URLs must not hold secrets, they are replicated and shown to operators: serve the artifact from a location the hosts can read without them", shown)
	}
	a.Host = strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	a.Port = u.Port()
	if a.Scheme == "file" {
		if a.Host != "" && a.Host != "localhost" {
			return fail("a file URL names a path on the host itself, not on %q: write file:///path (three slashes), got %q", u.Host, shown)
		}
		if a.Port != "" {
			return fail("a file URL has no port, got %q", shown)
		}
		a.Host = ""
	} else {
		if a.Host == "" {
			return fail("URL needs a host, got %q", shown)
		}
		if a.Port == "" {
			a.Port = map[string]string{"http": "80", "https": "443"}[a.Scheme]
		}
	}
	p, err := cleanURLPath(u)
	if err != nil {
		return fail("URL %q: %v", shown, err)
	}
	if a.Scheme == "file" && p == "/" {
		return fail("a file URL needs an absolute file path such as file:///srv/app.tar.gz, got %q", shown)
	}
	a.Path = p
	return a, u, nil
}

// CheckArtifactURL returns why raw is not an acceptable artifact URL, or
// nil. Spec validation and the agent call the same check.
func CheckArtifactURL(raw string) error {
	_, _, err := ParseArtifactURL(raw)
	return err
}

// cleanURLPath returns u's decoded path, refusing dot segments and
// percent-encoded separators, with repeated slashes collapsed.
func cleanURLPath(u *url.URL) (string, error) {
	raw := u.EscapedPath()
	lower := strings.ToLower(raw)
	for _, enc := range []string{"%2f", "%5c", "%00"} {
		if strings.Contains(lower, enc) {
			return "", fmt.Errorf("the path holds an encoded separator or NUL (%s); write the path plainly", strings.ToUpper(enc))
		}
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("the path must be absolute")
	}
	if strings.Contains(p, `\`) {
		return "", errors.New(`the path must not contain backslashes`)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return "", errors.New(`the path must not contain "." or ".." segments (also not percent-encoded)`)
		}
	}
	c := path.Clean(p) // only collapses "//" now; keeps no trailing slash
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, nil
}

func isArtifactScheme(s string) bool {
	for _, x := range ArtifactSchemes {
		if s == x {
			return true
		}
	}
	return false
}

func IsCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// ArtifactPrefix is one allowed location for artifacts (agent policy
// artifact_prefixes), compared by component.
type ArtifactPrefix struct {
	raw string
	u   ArtifactURL
}

// ParseArtifactPrefix parses an artifact_prefixes entry: an artifact URL
// without query or fragment. Its path is a directory: "https://a/builds"
// and "https://a/builds/" both allow https://a/builds/x and neither allows
// https://a/builds-evil/x.
func ParseArtifactPrefix(raw string) (ArtifactPrefix, error) {
	a, u, err := ParseArtifactURL(raw)
	if err != nil {
		return ArtifactPrefix{}, err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return ArtifactPrefix{}, fmt.Errorf("%w: a prefix has no query or fragment, got %q", ErrArtifactURL, RedactURL(raw))
	}
	if !strings.HasSuffix(a.Path, "/") {
		a.Path += "/"
	}
	return ArtifactPrefix{raw: raw, u: a}, nil
}

// String returns the prefix as configured.
func (p ArtifactPrefix) String() string { return p.raw }

// Contains reports whether the parsed artifact URL a lies under p.
func (p ArtifactPrefix) Contains(a ArtifactURL) bool {
	if a.Scheme != p.u.Scheme || a.Host != p.u.Host || a.Port != p.u.Port {
		return false
	}
	return strings.HasPrefix(a.Path, p.u.Path) || a.Path+"/" == p.u.Path
}

// ArtifactPrefixes is a parsed artifact_prefixes list.
type ArtifactPrefixes []ArtifactPrefix

// ParseArtifactPrefixes parses every entry; the error names the bad one.
func ParseArtifactPrefixes(raw []string) (ArtifactPrefixes, error) {
	out := make(ArtifactPrefixes, 0, len(raw))
	for i, r := range raw {
		p, err := ParseArtifactPrefix(r)
		if err != nil {
			return nil, fmt.Errorf("artifact_prefixes[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Check returns nil when rawURL is a valid artifact URL under one of ps,
// else why not. An empty list allows any valid artifact URL.
func (ps ArtifactPrefixes) Check(rawURL string) error {
	a, _, err := ParseArtifactURL(rawURL)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return nil
	}
	for _, p := range ps {
		if p.Contains(a) {
			return nil
		}
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = RedactURL(p.raw)
	}
	return fmt.Errorf("artifact URL %q is not under an allowed prefix (%s)", RedactURL(rawURL), strings.Join(names, ", "))
}

// redactedSecret replaces credentials in shown URLs, as url.URL.Redacted
// does for passwords.
const redactedSecret = "xxxxx"

// RedactURL returns raw with the credentials of its userinfo replaced:
// "https://user:secret@host/x" becomes "https://user:xxxxx@host/x" (as
// url.URL.Redacted), and "https://token@host/x" (a bare token used as the
// user name) becomes "https://xxxxx@host/x". It works on strings that do
// not parse as URLs too. Anything else is returned unchanged.
func RedactURL(raw string) string { return RedactURLsIn(raw) }

// RedactURLsIn redacts the credentials of every URL ("scheme://user:pw@…")
// inside free text: error messages, event messages, spec sources. Stored
// data written before specs refused credentials may still hold them; every
// path that shows such data to people passes it through here.
func RedactURLsIn(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		// The scheme must end right before "://" (letters, digits, +.-).
		j := i
		for j > 0 && isSchemeByte(rest[j-1]) {
			j--
		}
		start := i + 3
		if j == i {
			b.WriteString(rest[:start])
			rest = rest[start:]
			continue
		}
		// The authority runs to the first '/', '?', '#', space, quote or
		// control character. Sub-delimiters (",;)") may be part of a
		// password, so they do not end it: redacting too much is fine.
		end := start
		for end < len(rest) && !isAuthorityEnd(rest[end]) {
			end++
		}
		auth := rest[start:end]
		b.WriteString(rest[:start])
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			user := auth[:at]
			if k := strings.IndexByte(user, ':'); k >= 0 {
				b.WriteString(user[:k+1] + redactedSecret)
			} else {
				b.WriteString(redactedSecret)
			}
			b.WriteString(auth[at:])
		} else {
			b.WriteString(auth)
		}
		rest = rest[end:]
	}
	b.WriteString(rest)
	return b.String()
}

func isSchemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isAuthorityEnd(c byte) bool {
	switch c {
	case '/', '?', '#', ' ', '"', '\'', '`', '<', '>', '\\':
		return true
	}
	return c < 0x20 || c == 0x7f
}
