//go:build nopprof

package httpapi

import "net/http"

// PprofBuilt says whether this build serves pprof. The packaged agent is
// built with the nopprof tag (Makefile AGENT_TAGS): net/http/pprof links
// html/template, which costs every host megabytes of binary and start-up
// pages for an endpoint almost never used (cmd/agent/deps_test.go).
const PprofBuilt = false

func pprofIndex(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "this binary was built without pprof (build tag nopprof); build it without the tag to profile it")
}
