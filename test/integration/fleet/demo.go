//go:build e2e

package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// DemoApp is the demo service's app name in releases.
const DemoApp = "demo"

// Demo ports inside every host: the two slots and the traffic proxy.
const (
	DemoBluePort    = 18081
	DemoGreenPort   = 18082
	DemoTrafficPort = 18080
)

// DemoBinary builds examples/demo-app once per fleet and returns its
// path on the machine.
func (f *Fleet) DemoBinary() string {
	f.t.Helper()
	f.demoOnce.Do(func() {
		dir := filepath.Join(f.state, "demo-build")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.demoErr = err
			return
		}
		f.demoBin, f.demoErr = demoapp.Build(f.repo, dir)
	})
	if f.demoErr != nil {
		f.t.Fatalf("build demo app: %v", f.demoErr)
	}
	return f.demoBin
}

// PublishDemo packages the demo app at version into the share's
// artifacts directory. The returned artifact's URL is file:// inside the
// hosts (SharePath/artifacts/…); Path is the file on the machine.
func (f *Fleet) PublishDemo(version string, healthy bool) demoapp.Artifact {
	f.t.Helper()
	a, err := demoapp.Package(f.DemoBinary(), filepath.Join(f.share, "artifacts"), version, healthy)
	if err != nil {
		f.t.Fatalf("package demo %s: %v", version, err)
	}
	a.URL = "file://" + SharePath + "/artifacts/" + filepath.Base(a.Path)
	return a
}

// DemoSpec is demoapp.Spec with the fleet's demo ports.
func DemoSpec(name, version string, a demoapp.Artifact, bake string) string {
	return demoapp.Spec(name, version, a, DemoBluePort, DemoGreenPort, DemoTrafficPort, bake)
}

// StartRelease submits and starts a release spec (`rollwave release start
// FILE -json`) and returns the release.
func (cs *Coordinators) StartRelease(spec string) (*rollwavev1.Release, error) {
	file := filepath.Join(cs.t.TempDir(), "release.hcl")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		return nil, err
	}
	out, errOut, err := cs.CLI("release", "start", file, "-json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	r := &rollwavev1.Release{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), r); err != nil {
		return nil, fmt.Errorf("decode release start -json: %w\n%s", err, out)
	}
	return r, nil
}

// Release reads a release and its assignments with `rollwave release get
// ID -json`.
func (cs *Coordinators) Release(id string) (*rollwavev1.GetReleaseResponse, error) {
	out, errOut, err := cs.CLI("release", "get", id, "-json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	r := &rollwavev1.GetReleaseResponse{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), r); err != nil {
		return nil, fmt.Errorf("decode release get -json: %w\n%s", err, out)
	}
	return r, nil
}

// WaitRelease waits until the release reaches want, failing the test if it
// ends in another final state or the timeout passes.
func (cs *Coordinators) WaitRelease(id string, want rollwavev1.ReleaseState, timeout time.Duration) {
	cs.t.Helper()
	final := map[rollwavev1.ReleaseState]bool{
		rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:   true,
		rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK: true,
		rollwavev1.ReleaseState_RELEASE_STATE_ABORTED:     true,
		rollwavev1.ReleaseState_RELEASE_STATE_FAILED:      true,
		// Parallel regions with fail_local: some regions succeeded.
		rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED: true,
	}
	testutil.WaitForWith(cs.t, timeout, func() (bool, string) {
		resp, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		r := resp.GetRelease()
		if r.GetState() != want && final[r.GetState()] {
			out, _, _ := cs.CLI("release", "events", id)
			cs.t.Fatalf("release %s ended %s, want %s\n%s", id, r.GetState(), want, out)
		}
		return r.GetState() == want, fmt.Sprintf("release %s is %s", id, r.GetState())
	}, func() string {
		out, _, _ := cs.CLI("release", "events", id)
		return "events:\n" + out
	})
}

// Curl fetches http://127.0.0.1:PORT/PATH from inside the host (curl,
// 2s budget) and returns the body. A connection failure is an error.
func (h *Host) Curl(port int, path string) (string, error) {
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/" + strings.TrimPrefix(path, "/")
	out, errOut, err := h.ExecTimeout(10*time.Second, "curl", "-sS", "-f", "-m", "2", url)
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut))
	}
	return out, nil
}

// ServedVersion is the demo version answering on the host's traffic port.
func (h *Host) ServedVersion() (string, error) {
	out, err := h.Curl(DemoTrafficPort, "/")
	return strings.TrimSpace(out), err
}

// SlotUnit names an app slot's unit, as the agent's systemd driver does.
func SlotUnit(app string, s slot.Name) string { return slot.UnitName(app, s) }

// SlotUnits reads ActiveState/SubState of the app's blue and green units.
func (h *Host) SlotUnits(app string) (map[slot.Name]map[string]string, error) {
	res := map[slot.Name]map[string]string{}
	for _, s := range []slot.Name{slot.Blue, slot.Green} {
		props, err := h.UnitProps(SlotUnit(app, s), "ActiveState", "SubState", "MainPID", "LoadState")
		if err != nil {
			return nil, err
		}
		res[s] = props
	}
	return res, nil
}

// ActiveSlotUnits lists the app's slot units that are active.
func (h *Host) ActiveSlotUnits(app string) ([]slot.Name, error) {
	units, err := h.SlotUnits(app)
	if err != nil {
		return nil, err
	}
	var active []slot.Name
	for _, s := range []slot.Name{slot.Blue, slot.Green} {
		if units[s]["ActiveState"] == "active" {
			active = append(active, s)
		}
	}
	return active, nil
}

// SlotState reads the agent's state file for app on h.
func (h *Host) SlotState(app string) (*slot.State, error) {
	b, err := h.ReadFile(filepath.Join(AgentDataDir, "apps", app, "state.json"))
	if err != nil {
		return nil, err
	}
	st := &slot.State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: decode state.json: %w", h.Name, err)
	}
	return st, nil
}

// PublishDemoWith is PublishDemo with the raw config/healthy setting:
// "yes", "no", or a duration ("4s") after which the app turns unhealthy.
func (f *Fleet) PublishDemoWith(version, healthy string) demoapp.Artifact {
	f.t.Helper()
	a, err := demoapp.PackageWith(f.DemoBinary(), filepath.Join(f.share, "artifacts"), version, healthy)
	if err != nil {
		f.t.Fatalf("package demo %s (healthy %q): %v", version, healthy, err)
	}
	a.URL = "file://" + SharePath + "/artifacts/" + filepath.Base(a.Path)
	return a
}

// DemoSpecOptions change DemoSpec's defaults; an empty field keeps the
// default.
type DemoSpecOptions struct {
	// Bake is bake.first (required).
	Bake string
	// Decay is bake.decay; default 0.5.
	Decay string
	// IsolationTimeout is rollback.isolation_timeout; default "3s".
	IsolationTimeout string
	// KeepOld is slots.keep_old; default "hot".
	KeepOld string
	// MaxFailedHosts and MaxUnreachable, when either is set, add a gates
	// block with both (the unset one "0"; 0 is also the spec's default).
	MaxFailedHosts, MaxUnreachable string
	// Converge is release.converge ("manual" or "auto"); default unset
	// (the spec's default, manual).
	Converge string
}

// DemoSpecWith is DemoSpec with some settings changed.
func DemoSpecWith(name, version string, a demoapp.Artifact, o DemoSpecOptions) string {
	s := DemoSpec(name, version, a, o.Bake)
	set := func(old, repl string) {
		if !strings.Contains(s, old) {
			panic(fmt.Sprintf("DemoSpecWith: %q not in demoapp.Spec's output; update the helper", old))
		}
		s = strings.Replace(s, old, repl, 1)
	}
	if o.Decay != "" {
		set("decay = 0.5", "decay = "+o.Decay)
	}
	if o.IsolationTimeout != "" {
		set(`isolation_timeout = "3s"`, fmt.Sprintf("isolation_timeout = %q", o.IsolationTimeout))
	}
	if o.KeepOld != "" {
		set(`keep_old   = "hot"`, fmt.Sprintf("keep_old   = %q", o.KeepOld))
	}
	if o.MaxFailedHosts != "" || o.MaxUnreachable != "" {
		orZero := func(v string) string {
			if v == "" {
				return "0"
			}
			return v
		}
		set("  rollback {", fmt.Sprintf("  gates {\n    max_failed_hosts = %s\n    max_unreachable  = %s\n  }\n\n  rollback {",
			orZero(o.MaxFailedHosts), orZero(o.MaxUnreachable)))
	}
	if o.Converge != "" {
		set(`app     = "demo"`, fmt.Sprintf("app      = \"demo\"\n  converge = %q", o.Converge))
	}
	return s
}

// Events reads a release's audit events with `rollwave release events ID
// -json` from the first running coordinator.
func (cs *Coordinators) Events(id string) ([]*rollwavev1.Event, error) {
	out, errOut, err := cs.CLI("release", "events", id, "-json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	var list struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode release events -json: %w\n%s", err, out)
	}
	evs := make([]*rollwavev1.Event, 0, len(list.Events))
	for _, r := range list.Events {
		e := &rollwavev1.Event{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r, e); err != nil {
			return nil, fmt.Errorf("decode event %s: %w", r, err)
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// PublishDemoConfig is PublishDemo with config files (healthy, error_rate,
// unhealthy_if_file, …: see examples/demo-app) in the artifact.
func (f *Fleet) PublishDemoConfig(version string, config map[string]string) demoapp.Artifact {
	f.t.Helper()
	a, err := demoapp.PackageConfig(f.DemoBinary(), filepath.Join(f.share, "artifacts"), version, config)
	if err != nil {
		f.t.Fatalf("package demo %s (config %v): %v", version, config, err)
	}
	a.URL = "file://" + SharePath + "/artifacts/" + filepath.Base(a.Path)
	return a
}
