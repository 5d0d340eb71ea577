package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// maxBodyMatch is how much of a response body BodyMatch looks at. Health
// endpoints answer with a few bytes; a runaway body must not cost memory.
const maxBodyMatch = 64 << 10

// HTTPConfig describes an HTTP check: by default a GET that expects a
// 2xx; with Method, Headers and Body a synthetic request that looks like
// the app's real traffic.
type HTTPConfig struct {
	// Name appears in errors and status; empty means the URL.
	Name string
	// URL is requested. http and https only.
	URL string
	// Method is the request method; empty means GET.
	Method string
	// Headers are set on the request (a "Host" entry sets the Host).
	Headers map[string]string
	// Body is sent with the request; empty sends none.
	Body string
	// ExpectStatus is the required status code; 0 accepts any 2xx.
	ExpectStatus int
	// ExpectStatuses, when set, are the accepted status codes (any of
	// them) and ExpectStatus is ignored.
	ExpectStatuses []int
	// BodyMatch, when set, is a regular expression (RE2) that must match
	// somewhere in the first 64 KiB of the body.
	BodyMatch string
	// BodyContains, when set, must occur in the first 64 KiB of the body.
	BodyContains string
	// Timeout bounds the whole request, body included. 0 means DefaultTimeout.
	Timeout time.Duration
}

type httpCheck struct {
	name   string
	cfg    HTTPConfig
	re     *regexp.Regexp
	client *http.Client
}

// NewHTTPCheck returns a check that GETs cfg.URL. It fails on a bad URL or
// regular expression, naming the field.
//
// The check never uses a proxy from the environment (it probes local
// slots) and does not keep connections alive: each run dials afresh, so a
// listener that stopped accepting is noticed.
func NewHTTPCheck(cfg HTTPConfig) (Check, error) {
	name := cfg.Name
	if name == "" {
		name = cfg.URL
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("http check %s: url %q: %w", name, cfg.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("http check %s: url %q: want http:// or https:// with a host", name, cfg.URL)
	}
	if cfg.ExpectStatus != 0 && (cfg.ExpectStatus < 100 || cfg.ExpectStatus > 599) {
		return nil, fmt.Errorf("http check %s: expect_status %d: want 100-599, or 0 for any 2xx", name, cfg.ExpectStatus)
	}
	for _, s := range cfg.ExpectStatuses {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf("http check %s: expect_status %d: want 100-599", name, s)
		}
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	if !validMethod(cfg.Method) {
		return nil, fmt.Errorf("http check %s: method %q: want one of %s", name, cfg.Method, strings.Join(HTTPMethods, ", "))
	}
	for k, v := range cfg.Headers {
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return nil, fmt.Errorf("http check %s: header %q: not a valid HTTP header name and value", name, k)
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("http check %s: timeout %s is negative", name, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	var re *regexp.Regexp
	if cfg.BodyMatch != "" {
		if re, err = regexp.Compile(cfg.BodyMatch); err != nil {
			return nil, fmt.Errorf("http check %s: body_match %q: %w", name, cfg.BodyMatch, err)
		}
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		TLSHandshakeTimeout: cfg.Timeout,
		DisableKeepAlives:   true,
	}
	return &httpCheck{
		name:   name,
		cfg:    cfg,
		re:     re,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}, nil
}

func (c *httpCheck) Name() string { return c.name }

func (c *httpCheck) withName(name string) Check { cp := *c; cp.name = name; return &cp }

func (c *httpCheck) Run(ctx context.Context) error {
	var reqBody io.Reader
	if c.cfg.Body != "" {
		reqBody = strings.NewReader(c.cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, c.cfg.URL, reqBody)
	if err != nil {
		return c.errorf("%w", err)
	}
	req.Header.Set("User-Agent", "rollwave-health")
	for k, v := range c.cfg.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return c.errorf("timed out after %s", c.cfg.Timeout)
		}
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats "Get URL"; we say it ourselves
		}
		return c.errorf("%w", err)
	}
	defer resp.Body.Close()

	if set := c.cfg.ExpectStatuses; len(set) > 0 {
		if !slices.Contains(set, resp.StatusCode) {
			return c.errorf("status %d, want one of %v", resp.StatusCode, set)
		}
	} else if want := c.cfg.ExpectStatus; want != 0 && resp.StatusCode != want {
		return c.errorf("status %d, want %d", resp.StatusCode, want)
	} else if want == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return c.errorf("status %d, want 2xx", resp.StatusCode)
	}
	if c.re == nil && c.cfg.BodyContains == "" {
		// Drain a little so the server does not see a reset mid-write.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyMatch))
	if err != nil {
		return c.errorf("reading body: %w", err)
	}
	if c.re != nil && !c.re.Match(body) {
		return c.errorf("body does not match %q (got %q)", c.cfg.BodyMatch, snippet(body, 120))
	}
	if c.cfg.BodyContains != "" && !bytes.Contains(body, []byte(c.cfg.BodyContains)) {
		return c.errorf("body does not contain %q (got %q)", c.cfg.BodyContains, snippet(body, 120))
	}
	return nil
}

// HTTPMethods are the methods an http check may use.
var HTTPMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func validMethod(m string) bool { return slices.Contains(HTTPMethods, m) }

func (c *httpCheck) errorf(format string, args ...any) error {
	return fmt.Errorf("http check %s: %s %s: "+format, append([]any{c.name, c.cfg.Method, c.cfg.URL}, args...)...)
}

// snippet returns at most n bytes of b for an error message.
func snippet(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
