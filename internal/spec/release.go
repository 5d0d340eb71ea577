package spec

import (
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// Release is a validated release spec: what to roll out, where, and how
// carefully. docs/release-spec.md describes every field.
type Release struct {
	// Name is the release block's label, e.g. "api-2.4.0".
	Name string
	// App names the application; it appears in unit names and directories.
	App string
	// Version is the version being rolled out.
	Version string
	// Artifact is what to fetch into the idle slot.
	Artifact Artifact
	// Unit describes the systemd unit rendered into each slot.
	Unit Unit
	// Slots configures the blue and green slots.
	Slots Slots
	// Traffic says how the agent moves traffic between slots.
	Traffic Traffic
	// Target selects the hosts.
	Target Target
	// Phases shapes the waves.
	Phases Phases
	// Bake says how long each phase is watched.
	Bake Bake
	// Health says how a host proves the new version healthy.
	Health Health
	// Gates fail a phase.
	Gates Gates
	// Rollback says what happens when a phase fails.
	Rollback Rollback
	// Approval lists phases that wait for an operator.
	Approval Approval
	// Converge says how hosts left behind once the release succeeded
	// (drifted hosts) are brought to its version: manual (default) or auto.
	Converge Converge
	// Hooks are the lifecycle hooks (hook "NAME" blocks), at most one per
	// name, run by the agent as unit.user.
	Hooks []speccore.Hook
	// PostRollout says what happens after the last phase verified: how
	// long the gates keep watching every host with the old slot kept.
	PostRollout PostRollout
	// Requires are other apps this release needs at given versions on the
	// hosts it touches (requires blocks, repeatable).
	Requires []Requirement
}

// Requirement is one requires block: the release's phases do not start
// while a host of the phase runs App below Version.
type Requirement struct {
	// App is the required app's name (not the release's own app).
	App string
	// Version is a semantic version constraint, e.g. ">= 2.3" or
	// "^2.3, != 2.4.1" (github.com/Masterminds/semver/v3 syntax).
	Version string
}

// PostRollout is the watch after the last phase: for Watch the gates keep
// being read over every host and the old slots are kept, so a failure (or
// `rollwave release rollback`) reverts by local slot swaps; then the old
// slots are stopped and the release succeeds. Watch 0 (the default):
// the release succeeds when its last phase verifies.
type PostRollout struct {
	// Watch is the window's length, 0 to MaxPostRolloutWatch.
	Watch time.Duration
	// KeepOld is the old slot during the window: hot (running) or
	// stopped (each host stops it once its phase verified); derived from
	// slots.keep_old when not written.
	KeepOld speccore.WatchKeepOld
}

// Converge is the release's convergence mode.
type Converge string

const (
	// ConvergeManual shows drifted hosts and waits for
	// `rollwave release converge APP`.
	ConvergeManual Converge = "manual"
	// ConvergeAuto lets the leader roll drifted hosts to the release, one
	// host per phase, with the release's gates.
	ConvergeAuto Converge = "auto"
)

// Artifact is the release's downloadable payload.
type Artifact struct {
	// URL is http://, https:// or file://; {{app}} and {{version}} expand.
	URL string
	// SHA256 is the lowercase or uppercase hex digest (64 characters) the
	// fetched file must match.
	SHA256 string
}

// Unit is rendered into each slot's systemd unit. Strings may use the
// placeholders {{slot_dir}}, {{port}}, {{slot}}, {{version}} and {{app}}.
type Unit struct {
	// ExecStart is the command line (required).
	ExecStart string
	// User runs the service; empty means the unit's default (root).
	User string
	// Environment is set in the unit; keys are environment variable names.
	Environment map[string]string
	// WorkingDirectory is absolute (after expansion); empty means the slot
	// directory.
	WorkingDirectory string
	// ExecStartPre commands run before ExecStart, in order.
	ExecStartPre []string
	// Restart is systemd's Restart= setting; default "on-failure".
	Restart string
	// Hardening are sandboxing lines ("ProtectSystem=strict") replacing the
	// host's defaults for the same keys, within the host's policy.
	Hardening []string
}

// KeepOld says what happens to the old slot while the new one bakes.
type KeepOld string

const (
	// KeepHot keeps the old slot running until finalize: revert is instant.
	KeepHot KeepOld = "hot"
	// KeepCold stops the old slot but keeps its files.
	KeepCold KeepOld = "cold"
)

// Slots configures the two slots.
type Slots struct {
	// BluePort and GreenPort are the slots' ports (1-65535, different).
	BluePort, GreenPort int
	// KeepOld is hot (default) or cold.
	KeepOld KeepOld
}

// TrafficMode says who switches traffic between slots.
type TrafficMode string

const (
	// TrafficProxy uses the agent's built-in TCP proxy on Listen.
	TrafficProxy TrafficMode = "proxy"
	// TrafficExec runs Command to repoint an external load balancer.
	TrafficExec TrafficMode = "exec"
	// TrafficNone leaves traffic alone.
	TrafficNone TrafficMode = "none"
)

// Traffic configures the traffic switch.
type Traffic struct {
	// Mode is proxy (default), exec or none.
	Mode TrafficMode
	// Listen is the proxy's host:port (required for proxy; host may be
	// empty for all interfaces).
	Listen string
	// Command is the exec hook and its arguments (required for exec);
	// placeholders expand.
	Command []string
	// Protocol is what the proxy speaks (mode proxy only): tcp (default),
	// a byte pipe counting connections, failed connects and connection
	// durations; or http, a reverse proxy counting requests, 5xx answers,
	// upstream errors and latency per slot, for the request gates.
	Protocol TrafficProtocol
	// Steps, when set, move traffic to the new slot in steps instead of
	// at once: each is the percentage (1-100, ascending, the last 100) of
	// new connections (tcp) or requests (http) the new slot gets; the old
	// slot stays hot and takes the rest. Mode proxy or exec.
	Steps []int
	// StepTime is how long each step lasts before the agent's request
	// gate reads it (default DefaultTrafficStepTime).
	StepTime time.Duration
	// Sticky keeps a client on one version while the weight rises:
	// client_ip (a hash of the client address) or cookie (protocol http
	// only). Empty: each connection or request is weighted on its own.
	Sticky TrafficSticky
}

// TrafficSticky says how weighted steps keep a client on one version.
type TrafficSticky string

const (
	// StickyClientIP hashes the client address.
	StickyClientIP TrafficSticky = "client_ip"
	// StickyCookie sets a cookie with the client's bucket (http only).
	StickyCookie TrafficSticky = "cookie"
)

// Weighted-step limits and defaults.
const (
	// MaxTrafficSteps bounds traffic.steps.
	MaxTrafficSteps = 20
	// DefaultTrafficStepTime is traffic.step_time when steps are set.
	DefaultTrafficStepTime = time.Minute
	// MaxTrafficStepTime caps traffic.step_time: the steps run before the
	// host reports healthy, so they hold the phase meanwhile.
	MaxTrafficStepTime = 6 * time.Hour
)

// TrafficProtocol is what the agent's proxy speaks.
type TrafficProtocol string

const (
	// ProtocolTCP pipes bytes (default).
	ProtocolTCP TrafficProtocol = "tcp"
	// ProtocolHTTP proxies HTTP requests and measures them.
	ProtocolHTTP TrafficProtocol = "http"
)

// Target selects hosts.
type Target struct {
	// Cells are glob patterns (path.Match syntax) over cell names;
	// default ["*"].
	Cells []string
	// Exclude removes cells matching any of these globs.
	Exclude []string
	// Labels must all match a host's labels exactly.
	Labels map[string]string
}

// Growth is how phase sizes grow.
type Growth string

const (
	// GrowthGeometric multiplies each phase's size by Factor.
	GrowthGeometric Growth = "geometric"
	// GrowthLinear adds Step hosts each phase.
	GrowthLinear Growth = "linear"
)

// Phases shapes the waves.
type Phases struct {
	// Canary is phase 0's host count; default 1.
	Canary int
	// Growth is geometric (default) or linear.
	Growth Growth
	// Factor is the geometric multiplier (> 1); default 2.
	Factor float64
	// Step is the linear increment (>= 1 for linear; ignored otherwise).
	Step int
	// MaxSize caps a phase; a zero Quantity means no cap.
	MaxSize speccore.Quantity
	// PerCellMax caps hosts per cell per phase; 0 means no cap.
	PerCellMax int
	// ParallelCellsAfter is the first phase whose cells may run side by
	// side; 0 means cells always run one at a time.
	ParallelCellsAfter int
	// ParallelRegionsAfter is how many phases run over every region
	// before each region proceeds with its own phases, bakes and gates;
	// 0 means never.
	ParallelRegionsAfter int
	// Dark is the dark phase on each host: the new slot runs this long,
	// checked by the health (synthetic) checks, while every user request
	// still goes to the old slot; then the switch or the first weighted
	// step happens. 0 (default): none. Mode proxy or exec, keep_old hot.
	Dark time.Duration
	// Shadow (protocol http only, with Dark): the agent's proxy mirrors a
	// sample of user requests to the new slot, discards its answers and
	// compares them (errors, latency) with the old slot's answers to the
	// same requests; a clear difference fails the host before any user
	// request reaches the new version.
	Shadow bool
	// ShadowSample is the share of requests mirrored, in (0, 1]; default
	// DefaultShadowSample.
	ShadowSample float64
	// ShadowMethods are the HTTP methods mirrored; default GET and HEAD
	// (mirroring a POST repeats its side effects on the new slot).
	ShadowMethods []string
}

// Dark phase limits and defaults.
const (
	// MaxDark caps phases.dark: it holds the phase like a traffic step.
	MaxDark = 6 * time.Hour
	// DefaultShadowSample is phases.shadow_sample when shadow is on.
	DefaultShadowSample = 0.1
)

// DefaultShadowMethods are phases.shadow_methods when shadow is on.
var DefaultShadowMethods = []string{"GET", "HEAD"}

// shadowMethods are the methods phases.shadow_methods may list. CONNECT
// is left out: it is a tunnel, not a request to compare.
var shadowMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}

// Bake says how long each phase is watched before the next starts.
type Bake struct {
	// First is the bake after phase 0; default 30m.
	First time.Duration
	// Decay multiplies each later bake, in (0, 1]; default 0.5.
	Decay float64
	// Min is the floor (<= First); default 5m.
	Min time.Duration
}

// CheckKind is a health check's type.
type CheckKind string

const (
	// CheckHTTP expects ExpectStatus (and BodyMatch) from URL.
	CheckHTTP CheckKind = "http"
	// CheckTCP expects Address to accept a connection.
	CheckTCP CheckKind = "tcp"
	// CheckExec expects Command to exit 0.
	CheckExec CheckKind = "exec"
	// CheckUnit expects the slot's systemd unit to be active.
	CheckUnit CheckKind = "unit"
	// CheckGRPC expects grpc.health.v1.Health/Check on Address to answer
	// SERVING for GRPCService.
	CheckGRPC CheckKind = "grpc"
)

// Check is one health check.
type Check struct {
	// Kind is the block's first label.
	Kind CheckKind
	// Name is the optional second label (or name attribute); default the
	// kind.
	Name string
	// URL is probed by http checks; placeholders expand.
	URL string
	// Address (host:port) is dialled by tcp checks; placeholders expand.
	Address string
	// Command is run by exec checks; placeholders expand.
	Command []string
	// ExpectStatus is the HTTP status expected; default 200.
	ExpectStatus int
	// BodyMatch is a regular expression the HTTP body must match.
	BodyMatch string
	// Method, Headers and Body make an http check a synthetic request
	// (default GET, no headers, no body); placeholders expand in header
	// values and the body.
	Method  string
	Headers map[string]string
	Body    string
	// ExpectStatuses is set when expect_status is a list: any of them
	// passes (ExpectStatus is then its first element).
	ExpectStatuses []int
	// BodyContains is a substring the HTTP body must contain.
	BodyContains string
	// GRPCService is the service a grpc check asks about; "" is the
	// server as a whole.
	GRPCService string
	// TLS makes a grpc check dial with TLS (system roots, or CAFile, an
	// absolute path on the host); TLSServerName overrides the name
	// verified.
	TLS           bool
	TLSServerName string
	CAFile        string
	// Interval between probes; default 2s.
	Interval time.Duration
	// Timeout per probe (<= Interval); default 1s.
	Timeout time.Duration
}

// Health says how a host proves the new version healthy.
type Health struct {
	// Checks must all pass; at least one.
	Checks []Check
	// MinHealthyTime is how long checks must pass continuously; default 10s.
	MinHealthyTime time.Duration
	// HealthyDeadline is when a host that is not yet healthy has failed
	// (> MinHealthyTime); default 2m.
	HealthyDeadline time.Duration
}

// Baseline says whether new-version hosts are compared with old peers.
type Baseline string

const (
	// BaselineCompare compares against old-version peers; no data pauses.
	BaselineCompare Baseline = "compare"
	// BaselineOff disables the comparison (default).
	BaselineOff Baseline = "off"
)

// Gates fail a phase.
type Gates struct {
	// MaxFailedHosts per phase, count or percent; default 0.
	MaxFailedHosts speccore.Quantity
	// MaxUnreachable hosts during a phase, count or percent; default 0.
	MaxUnreachable speccore.Quantity
	// MaxCPUPercent fails a host above it; 0 means no CPU gate.
	MaxCPUPercent float64
	// MaxMemPercent fails a host above it; 0 means no memory gate.
	MaxMemPercent float64
	// MaxRestarts of the new slot's unit before the host fails; default 0.
	MaxRestarts int
	// Baseline is compare or off (default).
	Baseline Baseline
	// BaselineMinSamples is the least data a comparison needs; default 20.
	BaselineMinSamples int
	// MaxErrorRate fails a phase whose hosts' proxies saw a larger share
	// of failed requests (5xx, upstream errors) over the bake, as a
	// fraction (0.01; written "1%" or 0.01); 0 means no gate.
	MaxErrorRate float64
	// MaxLatencyP99 fails a phase whose requests' p99 latency over the
	// bake is above it; 0 means no gate.
	MaxLatencyP99 time.Duration
	// MinRequests is the least traffic the request gates (and the
	// baseline comparison of requests) judge; fewer is inconclusive and
	// pauses the release. Default 200.
	MinRequests int
	// Metric are the external gates (gate "prometheus"/"http" blocks).
	Metric []MetricGate
}

// DefaultMinRequests is gates.min_requests when the spec leaves it out.
const DefaultMinRequests = 200

// OnFailure says how far a failure rolls back.
type OnFailure string

const (
	// OnFailureAll reverts every switched host (default).
	OnFailureAll OnFailure = "all"
	// OnFailurePhase reverts the failed phase's hosts only.
	OnFailurePhase OnFailure = "phase"
	// OnFailurePause stops and waits for an operator.
	OnFailurePause OnFailure = "pause"
	// OnFailureFailAll is "all" by its multiregion name: a failure in
	// any region rolls the whole release back.
	OnFailureFailAll OnFailure = "fail_all"
	// OnFailureFailLocal, with parallel regions, rolls back and stops
	// only the failing region; the other regions continue. Before the
	// split (and without regions) it acts as "all".
	OnFailureFailLocal OnFailure = "fail_local"
)

// Rollback says what happens when a phase fails.
type Rollback struct {
	// OnFailure is all (default; also fail_all), phase, pause or fail_local.
	OnFailure OnFailure
	// IsolationTimeout is how long an agent mid-bake waits without the
	// leader before reverting alone; default 30s.
	IsolationTimeout time.Duration
	// OnControlPlaneLoss is hold (default) or revert: what a baking host
	// does when no coordinator is alive (as its gossip peers see it too),
	// as opposed to being cut off itself.
	OnControlPlaneLoss speccore.ControlPlaneLoss
	// Rehearse: once the canary phase passed its gates, each canary host
	// really rolls back to its old slot, checks it healthy, times it and
	// rolls forward again; a failed or too slow rehearsal fails phase 0.
	Rehearse bool
	// MaxRollbackTime is the longest a rehearsed rollback may take (from
	// its start to the old slot healthy and serving); default 10s.
	MaxRollbackTime time.Duration
}

// Approval lists phases after which the release waits for
// `rollwave release approve`.
type Approval struct {
	// AfterPhases are phase indexes (0 is the canary).
	AfterPhases []int
}

// Defaults for optional release fields.
const (
	DefaultCanary             = 1
	DefaultFactor             = 2.0
	DefaultBakeFirst          = 30 * time.Minute
	DefaultBakeDecay          = 0.5
	DefaultBakeMin            = 5 * time.Minute
	DefaultMinHealthyTime     = 10 * time.Second
	DefaultHealthyDeadline    = 2 * time.Minute
	DefaultCheckInterval      = 2 * time.Second
	DefaultCheckTimeout       = 1 * time.Second
	DefaultExpectStatus       = 200
	DefaultIsolationTimeout   = speccore.DefaultIsolationTimeout
	DefaultMaxRollbackTime    = 10 * time.Second
	DefaultBaselineMinSamples = 20
	DefaultRestart            = "on-failure"
)

// DefaultRelease returns a Release with every optional field at its
// default and the required ones empty.
func DefaultRelease() *Release {
	return &Release{
		Unit:        Unit{Restart: DefaultRestart},
		Slots:       Slots{KeepOld: KeepHot},
		Traffic:     Traffic{Mode: TrafficProxy},
		Target:      Target{Cells: []string{"*"}},
		Phases:      Phases{Canary: DefaultCanary, Growth: GrowthGeometric, Factor: DefaultFactor},
		Bake:        Bake{First: DefaultBakeFirst, Decay: DefaultBakeDecay, Min: DefaultBakeMin},
		Health:      Health{MinHealthyTime: DefaultMinHealthyTime, HealthyDeadline: DefaultHealthyDeadline},
		Gates:       Gates{Baseline: BaselineOff, BaselineMinSamples: DefaultBaselineMinSamples, MinRequests: DefaultMinRequests},
		Rollback:    Rollback{OnFailure: OnFailureAll, IsolationTimeout: DefaultIsolationTimeout, OnControlPlaneLoss: speccore.ControlPlaneLossHold, MaxRollbackTime: DefaultMaxRollbackTime},
		Converge:    ConvergeManual,
		PostRollout: PostRollout{KeepOld: speccore.WatchKeepHot},
	}
}

// defaultCheck returns a check of kind with its defaults.
func defaultCheck(kind CheckKind) Check {
	c := Check{Kind: kind, Name: string(kind), Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout}
	if kind == CheckHTTP {
		c.ExpectStatus = DefaultExpectStatus
	}
	return c
}
