package spec

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// MetricGateKind is an external gate's type.
type MetricGateKind string

const (
	// GatePrometheus runs a PromQL instant query and holds its value
	// against Max and/or Min.
	GatePrometheus MetricGateKind = "prometheus"
	// GateHTTP POSTs the phase context as JSON to URL and expects
	// {"verdict": "pass"|"fail"|"inconclusive", "reason": "…"}.
	GateHTTP MetricGateKind = "http"
)

// MetricGate is one gate "KIND" ["NAME"] block inside gates: an external
// system's judgement of the phase, read by the leader every Interval
// while the phase bakes and once more at the bake deadline. Anything but
// a clear answer is inconclusive and pauses the release.
type MetricGate struct {
	// Kind is the block's first label: prometheus or http.
	Kind MetricGateKind
	// Name is the optional second label (or name attribute); default the
	// kind. Unique among the release's gates.
	Name string
	// Address is the Prometheus server's base URL (prometheus).
	Address string
	// Query is a PromQL instant query (prometheus); GatePlaceholders
	// expand, escaped for a double-quoted PromQL string.
	Query string
	// Max and Min bound the query's value (prometheus; at least one).
	// Every series returned must be within them.
	Max, Min *float64
	// URL receives the phase context (http).
	URL string
	// Interval between readings during a bake; default 30s.
	Interval time.Duration
	// Timeout of one attempt (<= Interval); default 10s.
	Timeout time.Duration
	// Attempts per reading, retried with jittered, capped backoff; default 3.
	Attempts int
	// BearerTokenFile, PasswordFile and CAFile name files in the
	// coordinator's gate credentials directory (gate_credentials_dir),
	// never paths: the spec holds no secret and cannot make the leader
	// read any other file.
	BearerTokenFile string
	// Username goes with PasswordFile (HTTP basic auth).
	Username     string
	PasswordFile string
	CAFile       string
}

// Defaults and limits of metric gates.
const (
	DefaultGateInterval = 30 * time.Second
	DefaultGateTimeout  = 10 * time.Second
	DefaultGateAttempts = 3
	// MinGateInterval keeps a release from turning the leader into a
	// load generator against a metric store.
	MinGateInterval = time.Second
	// MaxGateAttempts bounds one reading's retries.
	MaxGateAttempts = 10
	// MaxMetricGates bounds the gates of one release.
	MaxMetricGates = 16
	// maxGateQueryBytes bounds a PromQL query.
	maxGateQueryBytes = 8 << 10
)

// GatePlaceholders are the placeholders a prometheus gate's query may
// use. hosts and cells are the phase's, joined with ","; *_regex are
// ^(a|b)$ of the names with regexp.QuoteMeta. The leader's expansion is
// internal/health/extgate.ExpandQuery (this package imports nothing of
// health, so the list is kept in both; extgate's test checks they agree).
var GatePlaceholders = []string{"app", "version", "release", "phase", "hosts", "hosts_regex", "cells", "cells_regex"}

// defaultMetricGate returns a gate of kind with its defaults.
func defaultMetricGate(kind MetricGateKind) MetricGate {
	return MetricGate{Kind: kind, Name: string(kind), Interval: DefaultGateInterval, Timeout: DefaultGateTimeout, Attempts: DefaultGateAttempts}
}

// metricGateBlock decodes one gate "KIND" ["NAME"] block, appending it to
// dst (kept even with an unknown kind, so paths stay aligned).
func metricGateBlock(dst *[]MetricGate) speccore.BlockFunc {
	return func(d *speccore.Decoder, b *hcl.Block, path string) {
		g := defaultMetricGate(MetricGateKind(b.Labels[0]))
		d.Pos[path+".kind"] = b.LabelRanges[0]
		if len(b.Labels) > 1 {
			g.Name = b.Labels[1]
			d.Pos[path+".name"] = b.LabelRanges[1]
		}
		d.Body(b.Body, path, b.DefRange, []speccore.Field{
			speccore.Attr("name", speccore.Str(&g.Name)),
			speccore.Attr("address", speccore.Str(&g.Address)),
			speccore.Attr("query", speccore.Str(&g.Query)),
			speccore.Attr("max", speccore.OptNumber(&g.Max)),
			speccore.Attr("min", speccore.OptNumber(&g.Min)),
			speccore.Attr("url", speccore.Str(&g.URL)),
			speccore.Attr("interval", speccore.Duration(&g.Interval)),
			speccore.Attr("timeout", speccore.Duration(&g.Timeout)),
			speccore.Attr("attempts", speccore.Integer(&g.Attempts)),
			speccore.Attr("bearer_token_file", speccore.Str(&g.BearerTokenFile)),
			speccore.Attr("username", speccore.Str(&g.Username)),
			speccore.Attr("password_file", speccore.Str(&g.PasswordFile)),
			speccore.Attr("ca_file", speccore.Str(&g.CAFile)),
		})
		*dst = append(*dst, g)
	}
}

// credentialFileName is what bearer_token_file, password_file and
// ca_file accept: a file name, no directories.
var credentialFileName = speccore.BoundedName(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`, 255)

func validateMetricGates(ps *speccore.Problems, gates []MetricGate) {
	const p = "release.gates.gate"
	if len(gates) > MaxMetricGates {
		ps.Add(p, "at most %d gate blocks per release, got %d", MaxMetricGates, len(gates))
	}
	names := map[string]int{}
	for i, g := range gates {
		gp := speccore.Index(p, i)
		if first, dup := names[g.Name]; dup {
			ps.Add(gp+".name", "duplicate gate name %q (also gate %d); name gates of the same kind with a second label: gate %q \"NAME\"", g.Name, first, g.Kind)
		}
		names[g.Name] = i
		g.validate(ps, gp)
	}
}

func (g MetricGate) validate(ps *speccore.Problems, p string) {
	speccore.CheckEnum(ps, p+".kind", string(g.Kind), string(GatePrometheus), string(GateHTTP))
	if g.Name == "" {
		ps.Add(p+".name", "must not be empty")
	}
	notUsed := func(name string, set bool) {
		if set {
			ps.Add(p+"."+name, "is not used by %s gates", g.Kind)
		}
	}
	switch g.Kind {
	case GatePrometheus:
		if g.Address == "" {
			ps.Missing(p, "address")
		} else {
			checkGateURL(ps, p+".address", g.Address)
		}
		switch {
		case strings.TrimSpace(g.Query) == "":
			ps.Missing(p, "query")
		case len(g.Query) > maxGateQueryBytes:
			ps.Add(p+".query", "is %d bytes, at most %d", len(g.Query), maxGateQueryBytes)
		default:
			if msg := speccore.CheckTemplate(g.Query, GatePlaceholders); msg != "" {
				ps.Add(p+".query", "%s", msg)
			}
		}
		if g.Max == nil && g.Min == nil {
			ps.Add(p+".max", "a prometheus gate needs max or min (or both): the bounds its query's value must stay within")
		}
		if g.Max != nil && g.Min != nil && *g.Min > *g.Max {
			ps.Add(p+".min", "must not exceed max (%s), got %s", formatFloat(*g.Max), formatFloat(*g.Min))
		}
		notUsed("url", g.URL != "")
	case GateHTTP:
		if g.URL == "" {
			ps.Missing(p, "url")
		} else {
			checkGateURL(ps, p+".url", g.URL)
		}
		notUsed("address", g.Address != "")
		notUsed("query", g.Query != "")
		notUsed("max", g.Max != nil)
		notUsed("min", g.Min != nil)
	}
	speccore.Within(ps, p+".interval", g.Interval, speccore.MaxCheckInterval)
	speccore.Within(ps, p+".timeout", g.Timeout, speccore.MaxCheckInterval)
	if g.Interval > 0 && g.Interval < MinGateInterval {
		ps.Add(p+".interval", "must be at least %s, got %s", MinGateInterval, g.Interval)
	}
	if g.Timeout > 0 && g.Interval > 0 && g.Timeout > g.Interval {
		ps.Add(p+".timeout", "must not exceed interval (%s), got %s", g.Interval, g.Timeout)
	}
	if g.Attempts < 1 || g.Attempts > MaxGateAttempts {
		ps.Add(p+".attempts", "must be from 1 to %d, got %d", MaxGateAttempts, g.Attempts)
	}
	for _, f := range []struct{ name, v string }{{"bearer_token_file", g.BearerTokenFile}, {"password_file", g.PasswordFile}, {"ca_file", g.CAFile}} {
		if f.v != "" && (!credentialFileName.MatchString(f.v) || f.v == "." || f.v == "..") {
			ps.Add(p+"."+f.name, "must be a file name inside the coordinator's gate_credentials_dir (letters, digits, '.', '_', '-'; no '/'), got %q", f.v)
		}
	}
	if (g.Username != "") != (g.PasswordFile != "") {
		ps.Add(p+".password_file", "basic auth needs both username and password_file")
	}
	if g.BearerTokenFile != "" && g.Username != "" {
		ps.Add(p+".bearer_token_file", "choose bearer_token_file or username/password_file, not both")
	}
}

// checkGateURL refuses what a gate URL must not be: anything but http(s)
// with a host, credentials in the URL (they would be replicated and shown
// in events), control characters.
func checkGateURL(ps *speccore.Problems, p, raw string) {
	shown := speccore.RedactURL(raw)
	if !utf8.ValidString(raw) || strings.IndexFunc(raw, speccore.IsCtl) >= 0 {
		ps.Add(p, "must not hold control characters or invalid UTF-8, got %q", shown)
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		ps.Add(p, "expected a URL such as http://prometheus.internal:9090, got %q", shown)
	case u.User != nil:
		ps.Add(p, "URL %q carries credentials (user:password@); specs are replicated and shown to operators: use username and password_file, or bearer_token_file", shown)
	case u.Scheme != "http" && u.Scheme != "https":
		ps.Add(p, "URL scheme must be http or https, got %q", shown)
	case u.Host == "":
		ps.Add(p, "URL needs a host, got %q", shown)
	case u.Fragment != "":
		ps.Add(p, "URL must not have a #fragment, got %q", shown)
	}
}

// String describes the gate for messages: "prometheus.errors".
func (g MetricGate) String() string { return fmt.Sprintf("%s.%s", g.Kind, g.Name) }
