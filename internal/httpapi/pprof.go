//go:build !nopprof

package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// PprofBuilt says whether this build serves pprof (built without the
// nopprof tag).
const PprofBuilt = true

// pprofIndex routes /debug/pprof/... to net/http/pprof's handlers; they
// are mounted here rather than by importing the package for its side
// effect, which would register them on http.DefaultServeMux.
func pprofIndex(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}
