package spec

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// httpCheckMethods are the methods an http check may send (as
// internal/health.HTTPMethods, which this package cannot import).
var httpCheckMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// maxCheckBody bounds a synthetic request's body.
const maxCheckBody = 64 << 10

// validateSynthetic checks an http check's request fields and its
// expected statuses.
func (c Check) validateSynthetic(ps *speccore.Problems, p string) {
	if c.Method != "" && !slices.Contains(httpCheckMethods, c.Method) {
		ps.Add(p+".method", "must be one of %s, got %q", strings.Join(httpCheckMethods, ", "), c.Method)
	}
	for _, k := range speccore.SortedKeys(c.Headers) {
		v := c.Headers[k]
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			ps.Add(p+".headers", "header name %q is not a valid HTTP header name", k)
		case !httpguts.ValidHeaderFieldValue(v):
			ps.Add(p+".headers", "header %q: value must not contain control characters such as newlines", k)
		default:
			if msg := speccore.CheckTemplate(v, speccore.Placeholders); msg != "" {
				ps.Add(p+".headers", "header %q: %s", k, msg)
			}
		}
	}
	if len(c.Body) > maxCheckBody {
		ps.Add(p+".body", "is %d bytes, at most %d", len(c.Body), maxCheckBody)
	} else if msg := speccore.CheckTemplate(c.Body, speccore.Placeholders); msg != "" {
		ps.Add(p+".body", "%s", msg)
	}
	for i, s := range c.ExpectStatuses {
		if s < 100 || s > 599 {
			ps.Add(speccore.Index(p+".expect_status", i), "must be an HTTP status from 100 to 599, got %d", s)
		}
	}
}

func (h Health) validate(ps *speccore.Problems) {
	const p = "release.health"
	if len(h.Checks) == 0 {
		// The path names the check blocks so that a check block that
		// failed to decode does not also count as missing.
		ps.AddIn(p+".check", p, `needs at least one check block, e.g. check "http" { url = "http://127.0.0.1:{{port}}/healthz" }`)
	}
	names := map[string]int{}
	for i, c := range h.Checks {
		cp := speccore.Index(p+".check", i)
		if first, dup := names[c.Name]; dup {
			ps.Add(cp+".name", "duplicate check name %q (also check %d); name checks of the same kind with a second label: check %q \"NAME\"", c.Name, first, c.Kind)
		}
		names[c.Name] = i
		c.validate(ps, cp)
	}
	speccore.Within(ps, p+".min_healthy_time", h.MinHealthyTime, speccore.MaxHealthyWait)
	speccore.Within(ps, p+".healthy_deadline", h.HealthyDeadline, speccore.MaxHealthyWait)
	if h.MinHealthyTime > 0 && h.HealthyDeadline > 0 && h.HealthyDeadline <= h.MinHealthyTime {
		ps.Add(p+".healthy_deadline", "must be longer than min_healthy_time (%s), got %s", h.MinHealthyTime, h.HealthyDeadline)
	}
}

func (c Check) validate(ps *speccore.Problems, p string) {
	speccore.CheckEnum(ps, p+".kind", string(c.Kind), string(CheckHTTP), string(CheckGRPC), string(CheckTCP), string(CheckExec), string(CheckUnit))
	if c.Name == "" {
		ps.Add(p+".name", "must not be empty")
	}
	// notUsed reports a field that this kind of check ignores, which is
	// almost always a mistake in the spec.
	notUsed := func(name string, set bool) {
		if set {
			ps.Add(p+"."+name, "is not used by %s checks", c.Kind)
		}
	}
	switch c.Kind {
	case CheckHTTP:
		if c.URL == "" {
			ps.Missing(p, "url")
		} else if msg := speccore.CheckTemplate(c.URL, speccore.Placeholders); msg != "" {
			ps.Add(p+".url", "%s", msg)
		} else if msg := checkURL(speccore.Expand(c.URL, speccore.SampleVars), "http", "https"); msg != "" {
			ps.Add(p+".url", "%s", msg)
		}
		if c.ExpectStatus < 100 || c.ExpectStatus > 599 {
			ps.Add(p+".expect_status", "must be an HTTP status from 100 to 599, got %d", c.ExpectStatus)
		}
		if c.BodyMatch != "" {
			if _, err := regexp.Compile(c.BodyMatch); err != nil {
				ps.Add(p+".body_match", "expected a regular expression, got %q: %v", c.BodyMatch, err)
			}
		}
		c.validateSynthetic(ps, p)
		notUsed("address", c.Address != "")
		notUsed("command", len(c.Command) > 0)
	case CheckGRPC:
		c.validateAddress(ps, p)
		if len(c.GRPCService) > 255 || strings.IndexFunc(c.GRPCService, speccore.IsCtl) >= 0 {
			ps.Add(p+".grpc_service", "must be a gRPC service name such as \"shop.Cart\" (at most 255 characters, no control characters)")
		}
		if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
			ps.Add(p+".ca_file", "must be an absolute path on the host, got %q", c.CAFile)
		}
		if !c.TLS && (c.CAFile != "" || c.TLSServerName != "") {
			ps.Add(p+".tls", "must be true when ca_file or tls_server_name is set")
		}
		notUsed("url", c.URL != "")
		notUsed("command", len(c.Command) > 0)
	case CheckTCP:
		c.validateAddress(ps, p)
		notUsed("url", c.URL != "")
		notUsed("command", len(c.Command) > 0)
	case CheckExec:
		if len(c.Command) == 0 {
			ps.Missing(p, "command")
		}
		for i, s := range c.Command {
			if msg := speccore.CheckTemplate(s, speccore.Placeholders); msg != "" {
				ps.Add(speccore.Index(p+".command", i), "%s", msg)
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
			ps.Add(p+".tls", "is not used by %s checks (an http check's URL says https://)", c.Kind)
		}
		notUsed("tls_server_name", c.TLSServerName != "")
		notUsed("ca_file", c.CAFile != "")
	}
	speccore.Within(ps, p+".interval", c.Interval, speccore.MaxCheckInterval)
	speccore.Within(ps, p+".timeout", c.Timeout, speccore.MaxCheckInterval)
	if c.Timeout > 0 && c.Interval > 0 && c.Timeout > c.Interval {
		ps.Add(p+".timeout", "must not exceed interval (%s), got %s", c.Interval, c.Timeout)
	}
}

// validateAddress checks the host:port of tcp and grpc checks.
func (c Check) validateAddress(ps *speccore.Problems, p string) {
	if c.Address == "" {
		ps.Missing(p, "address")
	} else if msg := speccore.CheckTemplate(c.Address, speccore.Placeholders); msg != "" {
		ps.Add(p+".address", "%s", msg)
	} else if msg := speccore.CheckHostPort(speccore.Expand(c.Address, speccore.SampleVars), 1); msg != "" {
		ps.Add(p+".address", "%s", msg)
	}
}
