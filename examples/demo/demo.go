package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The fleet: three cells of two hosts, least risky first.
var cells = []struct {
	name, criticality string
	risk, users       int
}{
	{"edge-1", "low", 1, 1200},
	{"edge-2", "medium", 2, 8000},
	{"core", "high", 5, 250000},
}

const hostsPerCell = 2

// The releases, in order. Bakes are seconds, not the minutes to hours of
// a real fleet, so the whole session takes under a minute; none is shorter
// than 2s, so that every phase sees minRequests (see spec.go).
var releases = []release{
	{version: "1.0.0", healthy: "yes", errorRate: "0", bakeFirst: "2s", bakeMin: "2s", expectOK: true,
		what: "the first version, to every host"},
	{version: "2.0.0", healthy: "yes", errorRate: "0", bakeFirst: "5s", bakeMin: "2s", expectOK: true,
		what: "a healthy update, phase by phase"},
	// Serves, and its health check stays fine, but every 10th request
	// to / answers 500: only the error-rate gate, reading the agent's
	// HTTP proxy, can catch it, at the end of the canary's 4s bake.
	{version: "3.0.0", healthy: "yes", errorRate: "0.1", bakeFirst: "4s", bakeMin: "2s", expectOK: false,
		what: "a bad update: healthy, but 10% of its requests fail"},
}

// Deadlines for the waits (not sleeps: each polls a condition).
const (
	clusterTimeout = 45 * time.Second
	hostsTimeout   = 45 * time.Second
	servingTimeout = 15 * time.Second
	pollEvery      = 250 * time.Millisecond
	stopGrace      = 3 * time.Second
)

type server struct {
	name                     string
	grpc, raft, gossip, http int
}

// appPorts are the ports written in the release specs; agent i serves
// them shifted by its -port-offset.
type appPorts struct {
	traffic, blue, green int
}

type demo struct {
	o   options
	say *narrator

	tmp      string
	cli      string // absolute path of bin/rollwave
	agentBin string
	sup      *supervisor
	addr     string // ROLLWAVE_ADDR
	sec      security
	servers  []server
	hosts    []host
	// agentHTTP are the agents' HTTP listeners (/metrics), in host order.
	agentHTTP []string
	ports     appPorts
	traffic   *traffic
	specs     map[string]string // release id → spec text
	// gateEvidence is the evidence of the bad release's error-rate
	// gate.failed event, once seen.
	gateEvidence map[string]string
	// keeping is set once -keep holds the cluster up: Ctrl-C then ends
	// the session as it should.
	keeping bool
}

func (d *demo) stage(name string) {
	if d.o.stage != nil {
		d.o.stage(name)
	}
}

// run is the whole session. Whatever happens, every child is stopped and
// the temp dir removed before it returns.
func (d *demo) run(sig context.Context) (err error) {
	tmp, err := os.MkdirTemp("", "rollwave-demo-")
	if err != nil {
		return err
	}
	d.tmp = tmp
	d.sup = newSupervisor(filepath.Join(tmp, "logs"))

	// A child that dies on its own ends the demo with the reason.
	ctx, cancel := context.WithCancelCause(sig)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case p := <-d.sup.exited:
			cancel(fmt.Errorf("%s exited unexpectedly (%v); the end of its log:\n      %s",
				p.name, p.err, strings.Join(tail(p.log, 12), "\n      ")))
		case <-ctx.Done():
		}
	}()

	defer func() {
		switch {
		case sig.Err() != nil && d.keeping && err == nil:
			d.say.section("Stopping every process")
		case sig.Err() != nil:
			d.say.section("Interrupted: stopping every process")
		case err != nil:
			d.say.section("The demo failed: %v", err)
		}
		cancel(nil)
		<-watchDone
		d.cleanup(err != nil && sig.Err() == nil)
	}()

	err = d.session(ctx)
	if cause := context.Cause(ctx); cause != nil {
		// Report why the context ended (a dead child, a signal) rather
		// than the context error a step returned.
		if sig.Err() != nil {
			if d.keeping {
				return nil // -keep: Ctrl-C is how the session ends
			}
			return errInterrupted
		}
		return cause
	}
	return err
}

func (d *demo) session(ctx context.Context) error {
	d.say.section("rollwave demo: 3 coordinators, 6 agents in 3 cells, all on 127.0.0.1")
	d.say.note("Everything lives in DEMO=%s and is removed at the end.", d.tmp)
	d.say.subst = []string{d.tmp, "$DEMO"}
	d.say.note("Ctrl-C stops the demo and every process it started.")
	if err := d.prepare(); err != nil {
		return err
	}
	d.stage("security")
	if err := d.secure(ctx); err != nil {
		return err
	}
	d.stage("servers")
	if err := d.startServers(ctx); err != nil {
		return err
	}
	d.stage("cells")
	if err := d.setCells(ctx); err != nil {
		return err
	}
	d.stage("agents")
	if err := d.startAgents(ctx); err != nil {
		return err
	}
	if d.o.short {
		d.say.section("Cluster and agents are up (-short: no releases)")
	} else if err := d.rollAll(ctx); err != nil {
		return err
	}
	d.endpointsNote()
	d.stage("done")
	if d.o.keep {
		return d.keepUp(ctx)
	}
	return nil
}

// rollAll rolls the three releases out under steady traffic and sums up.
func (d *demo) rollAll(ctx context.Context) error {
	d.traffic = newTraffic(d.hosts)
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go d.traffic.run(tctx)

	var v3Start time.Time
	for _, r := range releases {
		d.stage("release " + r.version)
		start := time.Now()
		if r.version == "3.0.0" {
			v3Start = start
		}
		if err := d.roll(ctx, r, start); err != nil {
			return err
		}
	}
	d.stage("summary")
	return d.summary(ctx, v3Start)
}

// prepare finds the binaries and packages the three releases' artifacts.
func (d *demo) prepare() error {
	for _, b := range []string{"rollwave", "rollwave-agent"} {
		if !fileExists(filepath.Join(d.o.binDir, b)) {
			return fmt.Errorf("%s not found in %s; run `make build` first (or `make demo`, which does)", b, d.o.binDir)
		}
	}
	var err error
	if d.cli, err = filepath.Abs(filepath.Join(d.o.binDir, "rollwave")); err != nil {
		return err
	}
	if d.agentBin, err = filepath.Abs(filepath.Join(d.o.binDir, "rollwave-agent")); err != nil {
		return err
	}
	if err := os.MkdirAll(d.sup.logDir, 0o755); err != nil {
		return err
	}
	if d.o.short {
		return nil
	}
	app := d.o.demoApp
	if app == "" {
		d.say.note("Building the demo service (examples/demo-app)...")
		if app, err = demoapp.Build(".", d.tmp); err != nil {
			return fmt.Errorf("%w (run the demo from the repository root, or pass -demo-app)", err)
		}
	}
	ports, err := pickAppPorts(len(cells) * hostsPerCell)
	if err != nil {
		return err
	}
	d.ports = ports
	artifacts := filepath.Join(d.tmp, "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return err
	}
	d.specs = map[string]string{}
	for _, r := range releases {
		a, err := demoapp.PackageConfig(app, artifacts, r.version, map[string]string{"healthy": r.healthy, "error_rate": r.errorRate})
		if err != nil {
			return fmt.Errorf("package %s: %w", r.version, err)
		}
		spec := renderSpec(r, a, ports)
		d.specs[r.id()] = spec
		if err := os.WriteFile(filepath.Join(d.tmp, r.file()), []byte(spec), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startServers starts three coordinators and waits for a leader with
// three voters.
func (d *demo) startServers(ctx context.Context) error {
	d.say.section("Starting 3 coordinators (raft + gossip + gRPC)")
	ports, err := freePorts(12)
	if err != nil {
		return err
	}
	for i := range 3 {
		d.servers = append(d.servers, server{name: fmt.Sprintf("c%d", i+1),
			grpc: ports[4*i], raft: ports[4*i+1], gossip: ports[4*i+2], http: ports[4*i+3]})
	}
	d.addr = fmt.Sprintf("127.0.0.1:%d", d.servers[0].grpc)
	for i, s := range d.servers {
		args := []string{"server", "-node", s.name,
			"-data-dir", filepath.Join(d.tmp, "servers", s.name),
			"-bootstrap-expect", "3",
			"-grpc-addr", local(s.grpc), "-raft-addr", local(s.raft), "-gossip-addr", local(s.gossip),
			"-http-addr", local(s.http)}
		for _, o := range d.servers {
			if o.name != s.name {
				args = append(args, "-join", local(o.gossip))
			}
		}
		args = append(args, d.sec.serverArgs()...)
		line := "rollwave " + strings.Join(args, " ") + " &"
		if i == 0 {
			d.say.command(line)
		} else {
			d.say.raw(d.say.shorten("$ "+line) + "\n")
		}
		if _, err := d.sup.start("server-"+s.name, d.cli, args...); err != nil {
			return err
		}
	}
	d.say.command("export ROLLWAVE_ADDR=" + d.addr)
	d.say.command("export ROLLWAVE_CACERT=" + d.sec.ca + " ROLLWAVE_CLIENT_CERT=" + d.sec.cliCert + " ROLLWAVE_CLIENT_KEY=" + d.sec.cliKey)
	// Status is the one call open before the ACL bootstrap.
	err = waitFor(ctx, clusterTimeout, "a raft leader", func() (bool, string) {
		var st rollwavev1.StatusResponse
		if err := d.cliJSON(ctx, &st, "status", "-json"); err != nil {
			return false, err.Error()
		}
		return st.GetLeaderId() != "", "no leader yet"
	})
	if err != nil {
		return err
	}
	if err := d.bootstrapACL(ctx); err != nil {
		return err
	}
	err = waitFor(ctx, clusterTimeout, "a raft leader with 3 voters", func() (bool, string) {
		var peers []*rollwavev1.RaftPeer
		if err := d.cliJSON(ctx, &peers, "operator", "raft", "list-peers", "-json"); err != nil {
			return false, err.Error()
		}
		voters, leader := 0, ""
		for _, p := range peers {
			if p.GetSuffrage() == "voter" {
				voters++
			}
			if p.GetLeader() {
				leader = p.GetId()
			}
		}
		return voters == 3 && leader != "", fmt.Sprintf("%d voters, leader %q", voters, leader)
	})
	if err != nil {
		return err
	}
	return d.show(ctx, "operator", "raft", "list-peers")
}

// setCells records the cells, least risky first.
func (d *demo) setCells(ctx context.Context) error {
	d.say.section("Describing the cells: rollouts start in the least risky one")
	for _, c := range cells {
		if err := d.show(ctx, "cells", "set", c.name, "-risk", strconv.Itoa(c.risk),
			"-criticality", c.criticality, "-users", strconv.Itoa(c.users)); err != nil {
			return err
		}
	}
	return nil
}

// startAgents starts two agents per cell and waits until all six are
// alive in gossip and connected to the leader.
func (d *demo) startAgents(ctx context.Context) error {
	d.say.section("Starting 6 agents, 2 per cell (process unit driver: no systemd, no root)")
	d.say.note("All six share 127.0.0.1, so each adds its own -port-offset to the ports of")
	d.say.note("every release spec (on real hosts the offset is 0).")
	n := len(cells) * hostsPerCell
	gossip, err := freePorts(2 * n) // gossip, then HTTP
	if err != nil {
		return err
	}
	i := 0
	for _, c := range cells {
		for range hostsPerCell {
			h := host{name: fmt.Sprintf("h%d", i+1), cell: c.name, offset: 10 * i}
			h.traffic = local(d.ports.traffic + h.offset)
			args := []string{"-node", h.name, "-cell", h.cell,
				"-data-dir", filepath.Join(d.tmp, "agents", h.name),
				"-unit-driver", "process",
				"-gossip-addr", local(gossip[i]),
				"-http-addr", local(gossip[n+i]),
				"-heartbeat-interval", "500ms",
				"-port-offset", strconv.Itoa(h.offset)}
			for _, s := range d.servers {
				args = append(args, "-join", local(s.gossip))
			}
			args = append(args, d.sec.agentArgs()...)
			line := "rollwave-agent " + strings.Join(args, " ") + " &"
			if i == 0 {
				d.say.command(line)
			} else {
				d.say.raw(d.say.shorten("$ "+line) + "\n")
			}
			if _, err := d.sup.start("agent-"+h.name, d.agentBin, args...); err != nil {
				return err
			}
			d.hosts = append(d.hosts, h)
			d.agentHTTP = append(d.agentHTTP, local(gossip[n+i]))
			i++
		}
	}
	err = waitFor(ctx, hostsTimeout, "6 hosts alive and connected", func() (bool, string) {
		var hosts []*rollwavev1.HostView
		if err := d.cliJSON(ctx, &hosts, "hosts", "-json"); err != nil {
			return false, err.Error()
		}
		ready := 0
		var seen []string
		for _, h := range hosts {
			seen = append(seen, fmt.Sprintf("%s:%s/%v", h.GetHost().GetId(), h.GetLiveness(), h.GetConnected()))
			if h.GetLiveness() == "alive" && h.GetConnected() {
				ready++
			}
		}
		return ready == n, strings.Join(seen, " ")
	})
	if err != nil {
		return err
	}
	if err := d.show(ctx, "hosts"); err != nil {
		return err
	}
	return d.show(ctx, "cells", "list")
}

// roll starts one release, follows it to its end and checks the outcome.
func (d *demo) roll(ctx context.Context, r release, start time.Time) error {
	d.say.section("Release %s: %s", r.version, r.what)
	switch r.version {
	case releases[0].version:
		d.say.note("The spec (the artifact is a tarball of examples/demo-app with its config):")
		d.say.command("cat " + r.file())
		for _, l := range strings.Split(strings.TrimRight(d.specs[r.id()], "\n"), "\n") {
			d.say.output(l)
		}
		if err := d.show(ctx, "release", "plan", r.file()); err != nil {
			return err
		}
	default:
		d.say.note("%s is %s with version %q, its artifact (config/healthy = %q, config/error_rate = %q)",
			r.file(), releases[0].file(), r.version, r.healthy, r.errorRate)
		d.say.note("and bakes of %s, halving each phase, at least %s.", r.bakeFirst, r.bakeMin)
	}
	if err := d.show(ctx, "release", "start", r.file()); err != nil {
		return err
	}

	before := d.traffic.counted()
	d.traffic.setReport(func(c change) {
		if c.status != 0 {
			d.say.event(c.at, "%s (%s) %s answered %d to a request (its first failure this release; the generator keeps count)",
				c.host, d.cellOf(c.host), c.hostTraffic(d), c.status)
			return
		}
		v := c.version
		if v == "" {
			v = "nothing (no answer)"
		}
		d.say.event(c.at, "%s (%s) %s now serves %s", c.host, d.cellOf(c.host), c.hostTraffic(d), v)
	})
	defer d.traffic.setReport(nil)

	wctx, cancel := context.WithTimeout(ctx, d.o.releaseTimeout)
	defer cancel()
	werr := d.show(wctx, "release", "status", r.id(), "-watch")
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case wctx.Err() != nil:
		// Show where it got stuck before everything stops.
		_ = d.show(ctx, "release", "status", r.id())
		return fmt.Errorf("release %s did not end within %s (its status is above)", r.id(), d.o.releaseTimeout)
	case werr != nil && !errors.As(werr, &exit):
		return werr
	case r.expectOK && werr != nil:
		return fmt.Errorf("release %s did not succeed: %v", r.id(), werr)
	case !r.expectOK && werr == nil:
		return fmt.Errorf("release %s succeeded; it should have been rolled back", r.id())
	case r.expectOK:
		d.say.note("(exit status 0: the release succeeded)")
	default:
		d.say.note("(exit status %d: the release did not succeed — here that is the point: it was rolled back)", exit.ExitCode())
	}

	var res rollwavev1.GetReleaseResponse
	err := d.cliJSON(ctx, &res, "release", "status", r.id(), "-json")
	if err != nil {
		return err
	}
	want, serving := rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, r.version
	if !r.expectOK {
		want, serving = rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, releases[1].version
	}
	if got := res.GetRelease().GetState(); got != want {
		return fmt.Errorf("release %s ended %s, expected %s", r.id(), got, want)
	}
	var gate *rollwavev1.Event
	if !r.expectOK {
		if gate, err = d.gateReading(ctx, r); err != nil {
			return err
		}
	}
	err = waitFor(ctx, servingTimeout, "every host serving "+serving, func() (bool, string) {
		ok, off := d.traffic.all(serving)
		return ok, strings.Join(off, " ")
	})
	if err != nil {
		return err
	}
	d.say.note("")
	if gate != nil {
		d.backOn(gate, start, serving)
		d.say.note("")
	}
	d.say.note("Every host's traffic port now answers %s:", serving)
	d.serving()
	d.requestsNote(before)
	return nil
}

func (c change) hostTraffic(d *demo) string {
	for _, h := range d.hosts {
		if h.name == c.host {
			return h.traffic
		}
	}
	return "?"
}

func (d *demo) cellOf(name string) string {
	for _, h := range d.hosts {
		if h.name == name {
			return h.cell
		}
	}
	return "?"
}

// serving prints what each host serves, as GET / on its traffic port.
func (d *demo) serving() {
	snap := d.traffic.snapshot()
	d.say.output(fmt.Sprintf("%-5s %-7s %-16s %s", "HOST", "CELL", "TRAFFIC", "SERVES"))
	for _, h := range d.hosts {
		d.say.output(fmt.Sprintf("%-5s %-7s %-16s %s", h.name, h.cell, h.traffic, snap[h.name]))
	}
}

// summary prints the final state of the releases and how fast 3.0.0 was
// rolled back.
func (d *demo) summary(ctx context.Context, v3Start time.Time) error {
	d.say.section("Final state")
	if err := d.show(ctx, "release", "list"); err != nil {
		return err
	}
	// The hosts' slot facts reach raft with their heartbeats; give them a
	// moment to agree with what the traffic ports answer.
	good := releases[1].version
	start := time.Now()
	err := waitFor(ctx, 10*time.Second, "every host's slot facts to show "+good+" active", func() (bool, string) {
		var hosts []*rollwavev1.HostView
		if err := d.cliJSON(ctx, &hosts, "hosts", "-json"); err != nil {
			return false, err.Error()
		}
		ok := len(hosts) == len(d.hosts)
		var seen []string
		for _, h := range hosts {
			for _, f := range h.GetHost().GetApps() {
				active := f.GetBlueVersion()
				if f.GetActive() == rollwavev1.Slot_SLOT_GREEN {
					active = f.GetGreenVersion()
				}
				seen = append(seen, h.GetHost().GetId()+"="+active)
				ok = ok && active == good
			}
		}
		return ok, strings.Join(seen, " ")
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		d.say.note("warning: %v", err)
	} else if waited := time.Since(start); waited > time.Second {
		d.say.note("(the hosts' slot facts caught up with their traffic after %s)", waited.Round(100*time.Millisecond))
	}
	if err := d.show(ctx, "hosts"); err != nil {
		return err
	}
	bad := releases[2]
	out, err := d.quiet(ctx, "release", "events", bad.id())
	if err != nil {
		return err
	}
	d.say.command("rollwave release events " + bad.id() + " | tail -12")
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for _, l := range lines[max(0, len(lines)-12):] {
		d.say.output(l)
	}

	var events []*rollwavev1.Event
	if err := d.cliJSON(ctx, &events, "release", "events", bad.id(), "-json"); err != nil {
		return err
	}
	d.rollbackTiming(events, v3Start)
	d.say.section("Done in %s: 1.0.0 and 2.0.0 rolled out, 3.0.0 caught in canary by the error-rate gate and rolled back", d.say.elapsed())
	return nil
}

// rollbackTiming prints, from the audit events and the demo's own
// traffic observations (same machine, same clock), a timeline of the bad
// release: when its canary served, when the gate failed, when every host
// served the good version again.
func (d *demo) rollbackTiming(events []*rollwavev1.Event, v3Start time.Time) {
	good, bad := releases[1].version, releases[2].version
	firstBad, lastGood := d.badWindow(v3Start)
	first := map[string]time.Time{}
	for _, e := range events {
		if _, seen := first[e.GetKind()]; !seen {
			first[e.GetKind()] = time.Unix(0, e.GetTimeUnixNano())
		}
	}
	type moment struct {
		at   time.Time
		what string
	}
	var timeline []moment
	if !firstBad.IsZero() {
		timeline = append(timeline, moment{firstBad, "the canary serves " + bad + " (healthy, but every 10th request fails)"})
	}
	for _, k := range []string{"phase.baking", "host.failed", "gate.failed", "release.rolling_back", "release.rolled_back"} {
		if t, ok := first[k]; ok {
			timeline = append(timeline, moment{t, k})
		}
	}
	if !lastGood.IsZero() {
		timeline = append(timeline, moment{lastGood, "every host serves " + good + " again"})
	}
	sort.SliceStable(timeline, func(i, j int) bool { return timeline[i].at.Before(timeline[j].at) })
	d.say.note("")
	d.say.note("How the bad release went (audit events, and GET / on each traffic port every %s):", d.traffic.every)
	for _, m := range timeline {
		d.say.note("  %s  %s", m.at.UTC().Format("15:04:05.000"), m.what)
	}
}

// badWindow returns, from the traffic observed since from, when a host
// first served the bad version and when the last host went back to the
// good one (zero when not seen).
func (d *demo) badWindow(from time.Time) (firstBad, lastGood time.Time) {
	good, bad := releases[1].version, releases[2].version
	for _, c := range d.traffic.since(from) {
		switch c.version {
		case bad:
			if firstBad.IsZero() {
				firstBad = c.at
			}
		case good:
			lastGood = c.at
		}
	}
	return firstBad, lastGood
}

// show runs a CLI command with the narration: the command line first,
// then its output, indented.
func (d *demo) show(ctx context.Context, args ...string) error {
	d.say.command("rollwave " + strings.Join(args, " "))
	lw := &lineWriter{emit: d.say.output}
	cmd := d.cliCmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = lw, lw
	err := runCmd(ctx, cmd)
	lw.flush()
	if err != nil {
		return fmt.Errorf("rollwave %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// cli runs a CLI command quietly and returns its stdout.
func (d *demo) quiet(ctx context.Context, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := d.cliCmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := runCmd(ctx, cmd); err != nil {
		return nil, fmt.Errorf("rollwave %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func (d *demo) cliCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Dir = d.tmp // spec files are named relative to it
	cmd.Env = append(os.Environ(), "ROLLWAVE_ADDR="+d.addr, "NO_COLOR=1")
	cmd.Env = append(cmd.Env, d.sec.cliEnv()...)
	return cmd
}

// cliJSON runs a CLI command with -json and decodes its output into v: a
// proto message, or a pointer to a slice of them (a JSON list).
func (d *demo) cliJSON(ctx context.Context, v any, args ...string) error {
	out, err := d.quiet(ctx, args...)
	if err != nil {
		return err
	}
	un := protojson.UnmarshalOptions{DiscardUnknown: true}
	switch v := v.(type) {
	case proto.Message:
		return un.Unmarshal(out, v)
	case *[]*rollwavev1.RaftPeer:
		return decodeList(out, v, un)
	case *[]*rollwavev1.HostView:
		return decodeList(out, v, un)
	case *[]*rollwavev1.Event:
		return decodeList(out, v, un)
	}
	return fmt.Errorf("cliJSON: unsupported %T", v)
}

func decodeList[M any, PM interface {
	*M
	proto.Message
}](raw []byte, dst *[]PM, un protojson.UnmarshalOptions) error {
	// A list prints as {"hosts": [...]}: one key holding the list.
	var wrapped map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return err
	}
	if len(wrapped) != 1 {
		return fmt.Errorf("want one list in %s", raw)
	}
	var items []json.RawMessage
	for _, l := range wrapped {
		items = l
	}
	for _, it := range items {
		m := PM(new(M))
		if err := un.Unmarshal(it, m); err != nil {
			return err
		}
		*dst = append(*dst, m)
	}
	return nil
}

// waitFor polls cond until it holds, ctx ends or within passes.
func waitFor(ctx context.Context, within time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last seen: %s)", within, what, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// cleanup stops every child, sweeps for leftovers, keeps the logs of a
// failed run and removes the temp dir.
func (d *demo) cleanup(failed bool) {
	start := time.Now()
	n, killed := d.sup.stopAll(stopGrace)
	strays := sweep(d.tmp)
	if failed || d.o.keepLogs {
		d.keepLogs()
	}
	rmErr := os.RemoveAll(d.tmp)
	msg := fmt.Sprintf("Stopped %d processes in %s", n, time.Since(start).Round(100*time.Millisecond))
	if len(killed) > 0 {
		msg += fmt.Sprintf(" (%s had to be killed)", strings.Join(killed, ", "))
	}
	if rmErr == nil {
		msg += "; removed " + d.tmp
	}
	d.say.raw("\n" + msg + "\n")
	for _, s := range strays {
		d.say.raw("warning: killed a leftover process: " + s + "\n")
	}
	if rmErr != nil {
		d.say.raw(fmt.Sprintf("warning: could not remove %s: %v\n", d.tmp, rmErr))
	}
	if d.o.result != nil {
		var pids []int
		for _, p := range d.sup.procs {
			pids = append(pids, p.cmd.Process.Pid)
		}
		d.o.result(runResult{tmp: d.tmp, pids: pids, strays: strays, gate: d.gateEvidence})
	}
}

// keepLogs copies the processes' logs out of the temp dir before it goes,
// so a failed demo can be looked into.
func (d *demo) keepLogs() {
	if d.o.logsTo == "" {
		return
	}
	dst := filepath.Join(d.o.logsTo, time.Now().UTC().Format("20060102-150405"))
	entries, err := os.ReadDir(d.sup.logDir)
	if err != nil || len(entries) == 0 {
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(d.sup.logDir, e.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
	}
	d.say.note("The processes' logs are in %s", dst)
}

func local(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// freePorts returns n distinct ports free on 127.0.0.1 for both TCP and
// UDP (gossip uses both). They stay free only until something binds them;
// the children bind them within seconds.
func freePorts(n int) ([]int, error) {
	var (
		ports []int
		hold  []interface{ Close() error }
	)
	defer func() {
		for _, h := range hold {
			h.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n {
			return nil, errors.New("cannot find free ports on 127.0.0.1")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hold = append(hold, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", local(port))
		if err != nil {
			continue
		}
		hold = append(hold, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// pickAppPorts chooses the spec's traffic, blue and green ports so that
// every agent's shifted copy (offset 10 × i) is free, below the ephemeral
// port range so outgoing connections do not take them meanwhile.
func pickAppPorts(agents int) (appPorts, error) {
	for range 50 {
		base := 20000 + 100*rand.IntN(120) // 20000..31900
		ok := true
		for i := 0; i < agents && ok; i++ {
			for _, p := range []int{base, base + 1, base + 2} {
				l, err := net.Listen("tcp", local(p+10*i))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
		}
		if ok {
			return appPorts{traffic: base, blue: base + 1, green: base + 2}, nil
		}
	}
	return appPorts{}, errors.New("cannot find free ports for the demo app on 127.0.0.1")
}
