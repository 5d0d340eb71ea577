package dashboard_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/dashboard"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// serve starts a dashboard over api on a loopback test server.
func serve(t *testing.T, api dashboard.API, adjust func(*dashboard.Config)) (*httptest.Server, *dashboard.Dashboard) {
	t.Helper()
	cfg := dashboard.DefaultConfig()
	cfg.API = api
	cfg.Logger = testutil.Logger(t)
	if adjust != nil {
		adjust(&cfg)
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Prefix, d)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { d.Close(); srv.Close() })
	return srv, d
}

// browser is an HTTP client with cookies that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func csrfOf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base + "/ui/")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "rw_csrf" {
			return ck.Value
		}
	}
	t.Fatal("no rw_csrf cookie")
	return ""
}

// Every page carries a strict CSP and the CSRF cookie is HttpOnly and
// SameSite=Strict; with ACLs off a banner says so.
func TestPageHeadersCookiesAndBanner(t *testing.T) {
	srv, _ := serve(t, simulatedFleet(20), nil)
	resp, body := get(t, browser(t), srv.URL+"/ui/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Errorf("inline script or style, or an unsafe CSP: %q", csp)
	}
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "rw_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode {
		t.Errorf("rw_csrf cookie = %+v, want HttpOnly and SameSite=Strict", csrf)
	}
	if !strings.Contains(body, `id="acl-banner"`) {
		t.Error("ACLs are off but no banner says so")
	}
	for _, h := range []string{"h0000", "h0019"} {
		if !strings.Contains(body, `id="host-`+h+`"`) {
			t.Errorf("fleet page has no tile for %s", h)
		}
	}
	// The page links this build's script and stylesheet by version:
	// those links may be cached for good, anything else may not.
	link := regexp.MustCompile(`src="(/ui/static/app\.js\?v=[0-9a-f]{12})"`).FindStringSubmatch(body)
	if link == nil || !strings.Contains(body, `href="/ui/static/style.css?v=`) {
		t.Fatalf("page does not link versioned static files: %s", body)
	}
	for path, want := range map[string]string{link[1]: "public, max-age=31536000, immutable",
		"/ui/static/app.js": "no-store", "/ui/static/app.js?v=000000000000": "no-store"} {
		resp, js := get(t, browser(t), srv.URL+path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(js, "EventSource") {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Cache-Control"); got != want {
			t.Errorf("GET %s: Cache-Control %q, want %q", path, got, want)
		}
	}
}

// A POST without the CSRF field, with a wrong one or from another
// origin changes nothing; with it the action reaches the API with its
// reason. Bad fields are named.
func TestActionsNeedCSRFAndAReason(t *testing.T) {
	api := simulatedFleet(3)
	srv, _ := serve(t, api, nil)
	c := browser(t)
	get(t, c, srv.URL+"/ui/releases/api-2.0.0")
	csrf := csrfOf(t, c, srv.URL)
	u := srv.URL + "/ui/releases/api-2.0.0/pause"
	cases := []struct {
		name   string
		form   url.Values
		header http.Header
		code   int
		want   string
	}{
		// No CSRF field at all.
		{"no csrf", url.Values{"reason": {"x"}}, nil, http.StatusForbidden, "CSRF"},
		// A field that does not match the cookie.
		{"wrong csrf", url.Values{"reason": {"x"}, "csrf": {strings.Repeat("a", 64)}}, nil, http.StatusForbidden, "CSRF"},
		// The right field, but the browser says another site sent it.
		{"cross site", url.Values{"reason": {"x"}, "csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden, "cross-site"},
		{"other origin", url.Values{"reason": {"x"}, "csrf": {csrf}}, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "cross-origin"},
		// No reason: it is required for the audit log.
		{"no reason", url.Values{"csrf": {csrf}}, nil, http.StatusBadRequest, "field reason"},
		{"bad skip_bake", url.Values{"csrf": {csrf}, "reason": {"x"}, "skip_bake": {"maybe"}}, nil, http.StatusBadRequest, "field skip_bake"},
	}
	for _, tc := range cases {
		resp, body := post(t, c, u, tc.form, tc.header)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d with %q in\n%s", tc.name, resp.StatusCode, tc.code, tc.want, body)
		}
	}
	if n := api.actionCount(); n != 0 {
		t.Fatalf("refused POSTs reached the API %d times", n)
	}
	resp, body := post(t, c, srv.URL+"/ui/releases/api-2.0.0/frobnicate", url.Values{"csrf": {csrf}, "reason": {"x"}}, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "unknown action") {
		t.Errorf("unknown action: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, c, u, url.Values{"csrf": {csrf}, "reason": {"canary looks wrong"}}, http.Header{"Origin": {srv.URL}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good POST: %d %s", resp.StatusCode, body)
	}
	if api.actionCount() != 1 || api.actions[0].GetReason() != "canary looks wrong" || api.actions[0].GetId() != "api-2.0.0" {
		t.Fatalf("API saw %v", api.actions)
	}
}

// With ACLs on, a page without a token goes to the login page; a login
// sets an HttpOnly, Secure (under TLS), SameSite=Strict cookie; a read
// token's pages draw no action buttons.
func TestLoginAndReadRole(t *testing.T) {
	api := simulatedFleet(3)
	api.tokens = map[string]*rollwavev1.ACLTokenInfo{
		"read-secret":   {Name: "rita", Role: "read"},
		"deploy-secret": {Name: "dana", Role: "deploy"},
	}
	srv, _ := serve(t, api, func(c *dashboard.Config) { c.ACLEnabled = true; c.SecureCookies = true })
	c := browser(t)
	resp, _ := get(t, c, srv.URL+"/ui/releases/api-2.0.0")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("no token: %d to %q, want a redirect to the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The jar keeps Secure cookies for http://127.0.0.1 too (a
	// loopback host counts as secure), so the flow runs over plain HTTP.
	get(t, c, srv.URL+"/ui/login")
	csrf := csrfOf(t, c, srv.URL)
	resp, body := post(t, c, srv.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {"wrong"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "token refused") {
		t.Fatalf("wrong token: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, c, srv.URL+"/ui/login", url.Values{"csrf": {csrf}, "token": {"read-secret"}, "next": {"/ui/releases/api-2.0.0"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/releases/api-2.0.0" {
		t.Fatalf("login: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var tok *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "rw_token" {
			tok = ck
		}
	}
	if tok == nil || !tok.HttpOnly || !tok.Secure || tok.SameSite != http.SameSiteStrictMode {
		t.Fatalf("token cookie %+v, want HttpOnly, Secure, SameSite=Strict", tok)
	}
	resp, body = get(t, c, srv.URL+"/ui/releases/api-2.0.0")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "rita (read)") {
		t.Fatalf("release page as rita: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `id="actions"`) || strings.Contains(body, `id="btn-`) {
		t.Error("a read token sees action buttons")
	}
	if strings.Contains(body, `id="acl-banner"`) {
		t.Error("ACLs are on but the banner says they are off")
	}
}

// At most MaxStreams live streams run at once; a stream ends after its
// lifetime with a "bye" event (the browser reconnects), freeing its slot.
func TestStreamLimits(t *testing.T) {
	srv, _ := serve(t, simulatedFleet(5), func(c *dashboard.Config) {
		c.MaxStreams = 1
		c.StreamLifetime = 2 * time.Second
		c.PollInterval = 50 * time.Millisecond
	})
	c := browser(t)
	ev := srv.URL + "/ui/events?path=" + url.QueryEscape("/ui/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ev, nil)
	first, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	if first.StatusCode != http.StatusOK || first.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("first stream: %d %s", first.StatusCode, first.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(first.Body)
	var events []string
	sawView := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // the server ended the stream
		}
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "event: "); ok {
			events = append(events, name)
			if name == "view" && !sawView {
				sawView = true
				// While this stream runs, a second is refused.
				resp, body := get(t, c, ev)
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many live-update streams") {
					t.Errorf("second stream: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
			}
		}
	}
	if !sawView || events[len(events)-1] != "bye" {
		t.Fatalf("events %v: want a view first and bye last", events)
	}
	// The slot is free again.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ev, nil)
		resp, err := c.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	// A path outside the dashboard is refused by name.
	resp, body := get(t, c, srv.URL+"/ui/events?path="+url.QueryEscape("https://evil.example/ui/"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "query parameter path") {
		t.Errorf("bad path: %d %s", resp.StatusCode, body)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*dashboard.Config)
		want string
	}{
		{"no API", func(c *dashboard.Config) { c.API = nil }, "API"},
		{"prefix", func(c *dashboard.Config) { c.Prefix = "ui" }, "Prefix"},
		{"streams", func(c *dashboard.Config) { c.MaxStreams = -1 }, "MaxStreams"},
		{"poll", func(c *dashboard.Config) { c.PollInterval = -time.Second }, "PollInterval"},
	} {
		cfg := dashboard.DefaultConfig()
		cfg.API = &fakeAPI{}
		tc.mod(&cfg)
		if _, err := dashboard.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}
