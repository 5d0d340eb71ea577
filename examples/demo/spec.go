package main

import (
	"fmt"

	"github.com/rollwave/rollwave/internal/testutil/demoapp"
)

// release is one release the demo rolls out.
type release struct {
	version string
	healthy string // the artifact's config/healthy: "yes", "no" or a duration
	// errorRate is the artifact's config/error_rate: the share of
	// requests to / it answers 500 ("0": none).
	errorRate string
	// bakeFirst and bakeMin shape the bakes (decay 0.5).
	bakeFirst, bakeMin string
	// expectOK says whether "release status -watch" should exit 0.
	expectOK bool
	what     string // one line for the narration
}

func (r release) id() string   { return "demo-" + r.version }
func (r release) file() string { return r.id() + ".hcl" }

// The request gates of every release. The traffic generator sends
// requestsPerSecond to each host, so the least a phase sees over its
// bake (one host, bakes of at least 2s) is about 80 requests, twice
// minRequests: the healthy releases never pause on too little traffic,
// and the bad one's canary (every 10th request failing) is judged on
// about 160.
const (
	maxErrorRate = "1%"
	minRequests  = 40
)

// renderSpec writes the release spec an operator would write. The ports
// are the spec's: each agent adds its -port-offset on its host.
func renderSpec(r release, a demoapp.Artifact, p appPorts) string {
	return fmt.Sprintf(`release %q {
  app     = "demo"
  version = %q

  artifact {
    url    = %q
    sha256 = %q
  }

  unit {
    exec_start = "{{slot_dir}}/bin/demo-app -dir {{slot_dir}} -listen 127.0.0.1:{{port}}"
  }

  slots {
    blue_port  = %d
    green_port = %d
    keep_old   = "hot"       # the old version keeps running until finalize: reverts are instant
  }

  traffic {
    mode     = "proxy"       # the agent's own switch in front of the slots
    protocol = "http"        # an HTTP reverse proxy: it counts requests and 5xx per slot
    listen   = "127.0.0.1:%d"
  }

  target {
    cells = ["*"]
  }

  phases {
    canary = 1               # phase 0: one host of the least risky cell
    growth = "geometric"     # then 2, 4, ... hosts, one cell at a time
    factor = 2
  }

  bake {
    first = %q             # watch the canary this long; later phases bake less
    decay = 0.5
    min   = %q
  }

  health {
    check "http" {
      url      = "http://127.0.0.1:{{port}}/healthz"
      interval = "250ms"
      timeout  = "200ms"
    }
    min_healthy_time = "1s"  # healthy this long before taking traffic
    healthy_deadline = "10s"
  }

  gates {
    max_failed_hosts = 0     # any failed host fails the phase
    max_error_rate   = "%s"  # more than this share of 5xx over the bake fails it
    min_requests     = %d    # fewer requests is too little to judge (a real fleet: hundreds)
  }

  rollback {
    on_failure        = "all"  # a failed phase reverts every switched host
    isolation_timeout = "5s"
  }
}
`, r.id(), r.version, a.URL, a.SHA256, p.blue, p.green, p.traffic, r.bakeFirst, r.bakeMin, maxErrorRate, minRequests)
}
