//go:build linux

package slot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollwave/rollwave/internal/spec"
)

// TestSecurityRedirectOffPrefix (issue 11 item 4): an HTTP redirect from
// an allowed artifact URL to a place outside artifact_prefixes was
// followed. Every hop is now checked before it is requested: the off-prefix
// URL is never fetched, whether it is another path on the same server or
// another server.
func TestSecurityRedirectOffPrefix(t *testing.T) {
	t.Parallel()
	var offHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offHits.Add(1)
		_, _ = w.Write(testArtifact.data)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/builds/same-host.tgz":
			http.Redirect(w, r, "/private/httpd.tar.gz", http.StatusFound)
		case "/builds/other-host.tgz":
			http.Redirect(w, r, other.URL+"/builds/httpd.tar.gz", http.StatusFound)
		case "/builds/inside.tgz":
			http.Redirect(w, r, "/builds/v2/httpd.tar.gz", http.StatusMovedPermanently)
		case "/builds/loop.tgz":
			http.Redirect(w, r, "/builds/loop.tgz", http.StatusFound)
		case "/builds/v2/httpd.tar.gz":
			_, _ = w.Write(testArtifact.data)
		default: // /private/...: must never be asked for
			offHits.Add(1)
			_, _ = w.Write(testArtifact.data)
		}
	}))
	defer srv.Close()
	prefixes, err := spec.ParseArtifactPrefixes([]string{srv.URL + "/builds/"})
	if err != nil {
		t.Fatal(err)
	}
	allow := URLCheck(prefixes.Check)

	for _, name := range []string{"same-host.tgz", "other-host.tgz"} {
		dir := filepath.Join(t.TempDir(), "apps", "web", "blue")
		err := StageWith(context.Background(), srv.URL+"/builds/"+name, testArtifact.sha, dir, StageOptions{Allow: allow})
		if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "not under an allowed prefix") {
			t.Errorf("%s: want ErrRedirect naming the prefix, got %v", name, err)
		}
	}
	if n := offHits.Load(); n != 0 {
		t.Fatalf("the off-prefix URL was fetched %d times", n)
	}

	// A redirect that stays under the prefix is followed.
	dir := filepath.Join(t.TempDir(), "apps", "web", "blue")
	if err := StageWith(context.Background(), srv.URL+"/builds/inside.tgz", testArtifact.sha, dir, StageOptions{Allow: allow}); err != nil {
		t.Fatalf("redirect inside the prefix: %v", err)
	}

	// Hops are capped, with or without a policy.
	for _, check := range []URLCheck{allow, nil} {
		dir := filepath.Join(t.TempDir(), "apps", "web", "blue")
		err := StageWith(context.Background(), srv.URL+"/builds/loop.tgz", testArtifact.sha, dir, StageOptions{Allow: check})
		if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "more than 5 redirects") {
			t.Errorf("redirect loop (policy %v): want ErrRedirect after 5 hops, got %v", check != nil, err)
		}
	}
}

// TestSecuritySecretRedactionStage (issue 11 item 11a): a staging error
// repeated the artifact URL with its credentials (old specs may carry
// them); the error goes into the FAILED report, the events and the logs.
func TestSecuritySecretRedactionStage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for _, u := range []string{
		strings.Replace(srv.URL, "http://", "http://deploy:hunter2@", 1) + "/x.tgz", // http 404
		"http://deploy:hunter2@127.0.0.1:1/x.tgz",                                   // connection refused
		"file://deploy:hunter2@localhost/nonexistent.tgz",                           // file error
	} {
		dir := filepath.Join(t.TempDir(), "apps", "web", "blue")
		err := Stage(context.Background(), u, testArtifact.sha, dir)
		if err == nil {
			t.Fatalf("%s: staged", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
