package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// TestSecurityArtifactPrefixEscapes (issue 11 item 4): artifact_prefixes
// were string prefixes, so a URL that starts with an allowed prefix but
// names a file elsewhere got through. Each escape below passed the old
// strings.HasPrefix check.
func TestSecurityArtifactPrefixEscapes(t *testing.T) {
	prefixes := []string{"https://a.example/builds/", "file:///srv/releases/", "http://b.example:8080/x"}
	ps, err := speccore.ParseArtifactPrefixes(prefixes)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url   string
		allow bool
	}{
		// Plain URLs under a prefix.
		{"https://a.example/builds/api/1.0/api.tar.gz", true},
		{"https://A.Example:443/builds/api.tar.gz", true}, // case and default port do not matter
		{"https://a.example./builds/api.tar.gz", true},    // nor a trailing dot on the host
		{"file:///srv/releases/api.tar.gz", true},
		{"file://localhost/srv/releases/api.tar.gz", true},
		{"http://b.example:8080/x/api.tgz", true}, // prefix without trailing slash is a directory
		{"https://a.example/builds//api.tar.gz?sig=1", true},
		// Dot segments climb out of the prefix.
		{"file:///srv/releases/../../../etc/shadow", false},
		{"https://a.example/builds/../secret/x.tgz", false},
		{"file:///srv/releases/%2e%2e/%2e%2e/etc/shadow", false}, // percent-encoded dots
		{"file:///srv/releases/%2E%2E/x", false},
		{"https://a.example/builds/..%2f..%2fsecret", false}, // encoded slash
		{"https://a.example/builds/%5c..%5csecret", false},   // encoded backslash
		{"https://a.example/builds/./x", false},
		// Look-alike paths and hosts.
		{"https://a.example/builds-evil/x.tgz", false},
		{"https://a.example/buildsx", false},
		{"http://b.example:8080/xy/api.tgz", false},
		{"https://a.example.evil.com/builds/x.tgz", false},
		{"https://a.example@evil.com/builds/x.tgz", false}, // userinfo trick
		{"https://evil.com/a.example/builds/x.tgz", false},
		// Other scheme or port.
		{"http://a.example/builds/x.tgz", false},
		{"https://a.example:8443/builds/x.tgz", false},
		{"http://b.example/x/api.tgz", false},
		// file URLs naming another host, or credentials.
		{"file://evil.com/srv/releases/x.tgz", false},
		{"https://user:pw@a.example/builds/x.tgz", false},
		{"ftp://a.example/builds/x.tgz", false},
		{"/srv/releases/x.tgz", false},
		{"https://a.example/builds/x\n.tgz", false},
	}
	for _, tc := range cases {
		err := ps.Check(tc.url)
		if tc.allow && err != nil {
			t.Errorf("%q: want allowed, got %v", tc.url, err)
		}
		if !tc.allow && err == nil {
			t.Errorf("%q: want refused, got allowed", tc.url)
		}
	}
}

// TestSecurityArtifactPrefixConfig: a prefix that is not a clean artifact
// URL is a config error naming the entry, not a silent "match nothing" (or
// "match everything").
func TestSecurityArtifactPrefixConfig(t *testing.T) {
	for _, bad := range []string{"artifacts.internal/", "https://u:p@a.example/", "https://a.example/builds/?x=1", "file://host/srv/", "https://a.example/b/../c/"} {
		c := speccore.DefaultAgentConfig()
		c.Cell, c.Join = "c1", []string{"127.0.0.1:7422"}
		c.Policy.ArtifactPrefixes = []string{"https://ok.example/", bad}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "policy.artifact_prefixes[1]") {
			t.Errorf("prefix %q: want an error naming policy.artifact_prefixes[1], got %v", bad, err)
		}
	}
}

// TestSecurityArtifactURLSpecValidation (issue 11 items 4 and 12): spec
// validation refused neither credentials in artifact URLs nor file://host,
// which the agent then refused (or fetched, leaking the credentials into
// every listing). The error names the field.
func TestSecurityArtifactURLSpecValidation(t *testing.T) {
	cases := []struct{ url, want string }{
		{"https://user:secret@artifacts.internal/api.tar.gz", "credentials"},
		{"https://token@artifacts.internal/api.tar.gz", "credentials"},
		{"file://fileserver/srv/api.tar.gz", "file:///path"},
		{"file:///srv/releases/../../etc/shadow", `".." segments`},
		{"https://artifacts.internal/%2e%2e/x.tgz", `".." segments`},
	}
	for _, tc := range cases {
		orig := string(readFile(t, designExample))
		src := strings.Replace(orig, "https://artifacts.internal/api/2.4.0/api.tar.gz", tc.url, 1)
		if src == orig {
			t.Fatal("fixture changed: artifact URL not found")
		}
		_, err := ParseRelease("r.hcl", []byte(src))
		if err == nil {
			t.Errorf("%q: accepted", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), "release.artifact.url") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want an error naming release.artifact.url and saying %q, got %v", tc.url, tc.want, err)
		}
		if strings.Contains(err.Error(), "secret@") {
			t.Errorf("%q: the error repeats the credentials: %v", tc.url, err)
		}
	}
	// The same check, on the agent side, says the same.
	if err := speccore.CheckArtifactURL("file://fileserver/x.tgz"); !errors.Is(err, speccore.ErrArtifactURL) {
		t.Errorf("CheckArtifactURL(file://fileserver/x.tgz) = %v, want ErrArtifactURL", err)
	}
}

// TestSecuritySecretRedactionText (issue 11 item 11a): credentials in URLs
// are hidden wherever text that may hold them is shown.
func TestSecuritySecretRedactionText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://user:s3cret@host/x.tgz", "https://user:xxxxx@host/x.tgz"},
		{"https://tok3n@host/x.tgz", "https://xxxxx@host/x.tgz"},
		{`fetch "https://u:p;a,ss@h/x": 404`, `fetch "https://u:xxxxx@h/x": 404`},
		{"url = \"http://u:p@w@h:81/a\"\nsha = 1", "url = \"http://u:xxxxx@h:81/a\"\nsha = 1"},
		{"two: http://a:b@x/ and https://c:d@y?q", "two: http://a:xxxxx@x/ and https://c:xxxxx@y?q"},
		{"no secret: https://host/a@b and mail a@b.c", "no secret: https://host/a@b and mail a@b.c"},
		{"https://host/x", "https://host/x"},
	}
	for _, tc := range cases {
		if got := speccore.RedactURLsIn(tc.in); got != tc.want {
			t.Errorf("RedactURLsIn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
