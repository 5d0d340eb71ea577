package speccore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Placeholders lists every template placeholder, without braces, that
// unit, traffic and health strings may use. Artifact URLs may use only
// {{app}} and {{version}}: slots do not exist yet when it is fetched.
var Placeholders = []string{"slot_dir", "port", "slot", "version", "app"}

// ArtifactPlaceholders are the placeholders an artifact URL may use.
var ArtifactPlaceholders = []string{"version", "app"}

// TemplateVars are the values placeholders expand to on one host.
type TemplateVars struct {
	// SlotDir is the slot's directory, e.g. /var/lib/rollwave/apps/api/blue.
	SlotDir string
	// Port is the slot's port.
	Port int
	// Slot is "blue" or "green".
	Slot string
	// Version is the release's version.
	Version string
	// App is the release's app.
	App string
}

var placeholderRE = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// Expand replaces placeholders in s with v's values. It assumes s passed
// validation; anything else between double braces is left as it is.
func Expand(s string, v TemplateVars) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		switch m[2 : len(m)-2] {
		case "slot_dir":
			return v.SlotDir
		case "port":
			return strconv.Itoa(v.Port)
		case "slot":
			return v.Slot
		case "version":
			return v.Version
		case "app":
			return v.App
		}
		return m
	})
}

// SampleVars are plausible values used to check that a template expands
// to something valid (a URL, an absolute path, host:port).
var SampleVars = TemplateVars{SlotDir: "/var/lib/rollwave/apps/app/blue", Port: 8081, Slot: "blue", Version: "1.0.0", App: "app"}

// CheckTemplate returns why s uses placeholders wrongly, or "".
func CheckTemplate(s string, allowed []string) string {
	var unknown []string
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		ok := false
		for _, a := range allowed {
			if m[1] == a {
				ok = true
			}
		}
		if !ok {
			unknown = append(unknown, m[0])
		}
	}
	wrap := func(names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "{{" + n + "}}"
		}
		return strings.Join(out, ", ")
	}
	if len(unknown) > 0 {
		return fmt.Sprintf("unknown placeholder %s in %q; expected %s", strings.Join(unknown, ", "), s, wrap(allowed))
	}
	rest := placeholderRE.ReplaceAllString(s, "")
	if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return fmt.Sprintf("unbalanced braces in %q; placeholders are written {{name}}, one of %s", s, wrap(allowed))
	}
	return ""
}
