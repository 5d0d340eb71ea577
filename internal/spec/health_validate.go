package spec

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// httpCheckMethods are the methods an http check may send (as
// internal/health.HTTPMethods, which this package cannot import).
var httpCheckMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// maxCheckBody bounds a synthetic request's body.
const maxCheckBody = 64 << 10

// validateSynthetic checks an http check's request fields and its
// expected statuses.
func (c Check) validateSynthetic(ps *problems, p string) {
	if c.Method != "" && !slices.Contains(httpCheckMethods, c.Method) {
		ps.add(p+".method", "must be one of %s, got %q", strings.Join(httpCheckMethods, ", "), c.Method)
	}
	for _, k := range sortedKeys(c.Headers) {
		v := c.Headers[k]
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			ps.add(p+".headers", "header name %q is not a valid HTTP header name", k)
		case !httpguts.ValidHeaderFieldValue(v):
			ps.add(p+".headers", "header %q: value must not contain control characters such as newlines", k)
		default:
			if msg := checkTemplate(v, Placeholders); msg != "" {
				ps.add(p+".headers", "header %q: %s", k, msg)
			}
		}
	}
	if len(c.Body) > maxCheckBody {
		ps.add(p+".body", "is %d bytes, at most %d", len(c.Body), maxCheckBody)
	} else if msg := checkTemplate(c.Body, Placeholders); msg != "" {
		ps.add(p+".body", "%s", msg)
	}
	for i, s := range c.ExpectStatuses {
		if s < 100 || s > 599 {
			ps.add(index(p+".expect_status", i), "must be an HTTP status from 100 to 599, got %d", s)
		}
	}
}

func (h Health) validate(ps *problems) {
	const p = "release.health"
	if len(h.Checks) == 0 {
		// The path names the check blocks so that a check block that
		// failed to decode does not also count as missing.
		*ps = append(*ps, problem{path: p + ".check", field: p, msg: `needs at least one check block, e.g. check "http" { url = "http://127.0.0.1:{{port}}/healthz" }`})
	}
	names := map[string]int{}
	for i, c := range h.Checks {
		cp := index(p+".check", i)
		if first, dup := names[c.Name]; dup {
			ps.add(cp+".name", "duplicate check name %q (also check %d); name checks of the same kind with a second label: check %q \"NAME\"", c.Name, first, c.Kind)
		}
		names[c.Name] = i
		c.validate(ps, cp)
	}
	within(ps, p+".min_healthy_time", h.MinHealthyTime, MaxHealthyWait)
	within(ps, p+".healthy_deadline", h.HealthyDeadline, MaxHealthyWait)
	if h.MinHealthyTime > 0 && h.HealthyDeadline > 0 && h.HealthyDeadline <= h.MinHealthyTime {
		ps.add(p+".healthy_deadline", "must be longer than min_healthy_time (%s), got %s", h.MinHealthyTime, h.HealthyDeadline)
	}
}

func (c Check) validate(ps *problems, p string) {
	checkEnum(ps, p+".kind", string(c.Kind), string(CheckHTTP), string(CheckGRPC), string(CheckTCP), string(CheckExec), string(CheckUnit))
	if c.Name == "" {
		ps.add(p+".name", "must not be empty")
	}
	// notUsed reports a field that this kind of check ignores, which is
	// almost always a mistake in the spec.
	notUsed := func(name string, set bool) {
		if set {
			ps.add(p+"."+name, "is not used by %s checks", c.Kind)
		}
	}
	switch c.Kind {
	case CheckHTTP:
		if c.URL == "" {
			ps.missing(p, "url")
		} else if msg := checkTemplate(c.URL, Placeholders); msg != "" {
			ps.add(p+".url", "%s", msg)
		} else if msg := checkURL(Expand(c.URL, sampleVars), "http", "https"); msg != "" {
			ps.add(p+".url", "%s", msg)
		}
		if c.ExpectStatus < 100 || c.ExpectStatus > 599 {
			ps.add(p+".expect_status", "must be an HTTP status from 100 to 599, got %d", c.ExpectStatus)
		}
		if c.BodyMatch != "" {
			if _, err := regexp.Compile(c.BodyMatch); err != nil {
				ps.add(p+".body_match", "expected a regular expression, got %q: %v", c.BodyMatch, err)
			}
		}
		c.validateSynthetic(ps, p)
		notUsed("address", c.Address != "")
		notUsed("command", len(c.Command) > 0)
	case CheckGRPC:
		c.validateAddress(ps, p)
		if len(c.GRPCService) > 255 || strings.IndexFunc(c.GRPCService, isCtl) >= 0 {
			ps.add(p+".grpc_service", "must be a gRPC service name such as \"shop.Cart\" (at most 255 characters, no control characters)")
		}
		if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
			ps.add(p+".ca_file", "must be an absolute path on the host, got %q", c.CAFile)
		}
		if !c.TLS && (c.CAFile != "" || c.TLSServerName != "") {
			ps.add(p+".tls", "must be true when ca_file or tls_server_name is set")
		}
		notUsed("url", c.URL != "")
		notUsed("command", len(c.Command) > 0)
	case CheckTCP:
		c.validateAddress(ps, p)
		notUsed("url", c.URL != "")
		notUsed("command", len(c.Command) > 0)
	case CheckExec:
		if len(c.Command) == 0 {
			ps.missing(p, "command")
		}
		for i, s := range c.Command {
			if msg := checkTemplate(s, Placeholders); msg != "" {
				ps.add(index(p+".command", i), "%s", msg)
			}
		}
		notUsed("url", c.URL != "")
		notUsed("address", c.Address != "")
	case CheckUnit:
		notUsed("url", c.URL != "")
		notUsed("address", c.Address != "")
		notUsed("command", len(c.Command) > 0)
	}
	if c.Kind != CheckHTTP {
		notUsed("expect_status", c.ExpectStatus != 0 || len(c.ExpectStatuses) > 0)
		notUsed("body_match", c.BodyMatch != "")
		notUsed("method", c.Method != "")
		notUsed("headers", len(c.Headers) > 0)
		notUsed("body", c.Body != "")
		notUsed("body_contains", c.BodyContains != "")
	}
	if c.Kind != CheckGRPC {
		notUsed("grpc_service", c.GRPCService != "")
		if c.TLS {
			ps.add(p+".tls", "is not used by %s checks (an http check's URL says https://)", c.Kind)
		}
		notUsed("tls_server_name", c.TLSServerName != "")
		notUsed("ca_file", c.CAFile != "")
	}
	within(ps, p+".interval", c.Interval, MaxCheckInterval)
	within(ps, p+".timeout", c.Timeout, MaxCheckInterval)
	if c.Timeout > 0 && c.Interval > 0 && c.Timeout > c.Interval {
		ps.add(p+".timeout", "must not exceed interval (%s), got %s", c.Interval, c.Timeout)
	}
}

// validateAddress checks the host:port of tcp and grpc checks.
func (c Check) validateAddress(ps *problems, p string) {
	if c.Address == "" {
		ps.missing(p, "address")
	} else if msg := checkTemplate(c.Address, Placeholders); msg != "" {
		ps.add(p+".address", "%s", msg)
	} else if msg := checkHostPort(Expand(c.Address, sampleVars), 1); msg != "" {
		ps.add(p+".address", "%s", msg)
	}
}
