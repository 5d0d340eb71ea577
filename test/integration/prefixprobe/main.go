//go:build e2e

// Command prefixprobe runs inside a real-host test's host (see
// unit_prefix_test.go). It reads the host's installed agent config, builds
// the agent's local policy from it exactly as rollwave-agent does, and
// puts crafted assignment orders to it — orders a coordinator's spec
// validation would refuse, as a forged or old coordinator could still
// send them — then to the slot renderer (the second guard). It prints one
// JSON line per order and, with -out, writes the unit the agent renders
// for the accepted control order, for `systemd-analyze verify`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/rollwave/rollwave/internal/agent"
	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/deploy/slot/systemd"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Result is one order's outcome.
type Result struct {
	Name string `json:"name"`
	// Policy is the policy's refusal ("" = accepted).
	Policy string `json:"policy"`
	// Render is the slot renderer's refusal ("" = rendered).
	Render string `json:"render"`
}

func order(exec, user string, pre ...string) *rollwavev1.ReleaseSpec {
	return &rollwavev1.ReleaseSpec{
		Name: "forged-1", App: "forged", Version: "1",
		Artifact: &rollwavev1.Artifact{Url: "file:///opt/rw/artifacts/x.tar.gz", Sha256: "00"},
		Unit:     &rollwavev1.UnitSpec{ExecStart: exec, User: user, ExecStartPre: pre},
	}
}

func main() {
	config := flag.String("config", "/etc/rollwave/agent.hcl", "agent config file")
	out := flag.String("out", "", "write the control order's rendered unit here")
	flag.Parse()
	src, err := os.ReadFile(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ac, err := spec.ParseAgentConfig(*config, src)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	policy := agent.PolicyFromConfig(ac.Policy)

	orders := []struct {
		name string
		spec *rollwavev1.ReleaseSpec
	}{
		// The control runs as an ordinary system user the test creates
		// (systemd-analyze warns about "nobody" as a service user).
		{"control", order("/usr/bin/sleep 600", "rwapp")},
		{"plus", order("+/bin/sh -c 'id -u > /run/rw-forged-uid'", "nobody")},
		{"quoted plus", order(`"+/bin/sh" -c 'id -u > /run/rw-forged-uid'`, "nobody")},
		{"bang", order("!/bin/sh -c id", "nobody")},
		{"double bang", order("!!/bin/sh -c id", "nobody")},
		{"at", order("@/bin/sh sh -c id", "nobody")},
		{"minus", order("-/bin/false", "nobody")},
		{"colon", order(":/bin/echo $HOME", "nobody")},
		{"pipe", order("|/bin/sh -c id", "nobody")},
		{"combined after blanks", order(`  "+!"/bin/sh -c id`, "nobody")},
		{"plus in exec_start_pre", order("/usr/bin/sleep 600", "nobody", "+/bin/sh -c id")},
		{"user 00", order("/usr/bin/sleep 600", "00")},
	}
	enc := json.NewEncoder(os.Stdout)
	for _, o := range orders {
		r := Result{Name: o.name}
		if err := policy.Check(o.spec); err != nil {
			r.Policy = err.Error()
		}
		u, err := slot.RenderUnit(o.spec, o.spec.GetApp(), slot.Blue, o.spec.GetVersion(), "/var/lib/rollwave-agent/apps/forged/blue", 18080)
		var unit []byte
		if err == nil {
			unit, err = systemd.Render(u, systemd.DefaultHardening)
		}
		if err != nil {
			r.Render = err.Error()
		}
		if o.name == "control" && *out != "" && err == nil {
			if err := os.WriteFile(*out, unit, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		_ = enc.Encode(r)
	}
}
