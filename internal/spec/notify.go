package spec

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// NotifyConfig is one `notify "NAME" { }` block of the server config: a
// target the leader delivers audit events to, at least once and in order.
type NotifyConfig struct {
	// Name labels the block; it names the target's delivery cursor in raft,
	// so renaming a target starts it afresh from the newest event.
	Name string
	// Type is "webhook" (default: a JSON body per event) or "slack" (a
	// Slack incoming webhook: {"text": ...}).
	Type string
	// URL is where events are POSTed: http:// or https://.
	URL string
	// Events are the event kinds delivered ("gate.failed"), a family
	// wildcard ("release.*") or "*" for every event. Required.
	Events []string
	// SecretFile names a file holding the HMAC-SHA256 key that signs every
	// request (X-Rollwave-Signature). Absolute; read at start. Empty: the
	// requests are not signed.
	SecretFile string
	// Timeout bounds one request; default 10s, 1s to 2m.
	Timeout time.Duration
}

// Notification target types.
const (
	NotifyWebhook = "webhook"
	NotifySlack   = "slack"
)

// Notification timeout default and bounds.
const (
	DefaultNotifyTimeout = 10 * time.Second
	MinNotifyTimeout     = time.Second
	MaxNotifyTimeout     = 2 * time.Minute
)

// NotifyEventKinds are the audit event kinds the coordinator writes, the
// names a notify block may subscribe to. Kept in step with the writers:
// internal/raftfsm (release.<state>, phase.<state>, freeze.*, acl.*,
// state.pruned), internal/deploy/rollout (gates, phases, hosts) and
// internal/deploy/dispatch (host.switched, host.reverted,
// host.held_control_plane_down). host.reverted_isolated is not a kind of
// its own: it selects the host.reverted events of hosts that reverted by
// themselves while cut off from the leader.
var NotifyEventKinds = []string{
	"acl.bootstrapped", "acl.token_created", "acl.token_deleted",
	"chain.failed", "chain.halted", "chain.revert_started", "chain.rollback_stuck", "chain.rolled_back", "chain.rolling_back",
	"chain.step_ended", "chain.step_rolling_back", "chain.step_started", "chain.submitted", "chain.succeeded", "chain.waiting",
	"freeze.added", "freeze.global_off", "freeze.global_on", "freeze.overridden", "freeze.removed",
	"gate.failed", "gate.inconclusive", "gate.passed",
	"host.failed", "host.held_control_plane_down", "host.reverted", "host.reverted_isolated", "host.switched", "host.unreachable",
	"hosts.assigned",
	"phase.approved", "phase.bake_skipped", "phase.baking", "phase.deploying", "phase.failed", "phase.held",
	"phase.pending", "phase.rehearsed", "phase.started", "phase.verified",
	"region.advanced", "region.failed", "region.rollback_incomplete", "region.rolled_back", "region.rolling_back", "region.started", "region.succeeded",
	"release.aborted", "release.acked", "release.advanced", "release.awaiting_approval", "release.converge", "release.failed", "release.finalizing",
	"release.partially_succeeded", "release.paused", "release.pending", "release.plan_failed", "release.planned", "release.replanned",
	"release.rolled_back", "release.rolling_back", "release.running", "release.submitted", "release.succeeded", "release.watch_ended", "release.watching",
	"revert.ordered",
	"state.pruned",
}

// notifyEventFamilies are the prefixes "family.*" may name.
func notifyEventFamilies() []string {
	var fams []string
	for _, k := range NotifyEventKinds {
		f, _, _ := strings.Cut(k, ".")
		if !slices.Contains(fams, f) {
			fams = append(fams, f)
		}
	}
	return fams
}

// checkNotifyEvent returns why ev is not a subscribable event name, or "".
func checkNotifyEvent(ev string) string {
	if ev == "*" || slices.Contains(NotifyEventKinds, ev) {
		return ""
	}
	if fam, ok := strings.CutSuffix(ev, ".*"); ok {
		if slices.Contains(notifyEventFamilies(), fam) {
			return ""
		}
		return fmt.Sprintf("%q names no event family; expected one of %s (each followed by .*)", ev, strings.Join(notifyEventFamilies(), ", "))
	}
	msg := fmt.Sprintf("%q is not an event the coordinator writes", ev)
	if s := speccore.Suggest(ev, NotifyEventKinds); s != "" {
		msg += s
	}
	return msg + "; see docs/release-spec.md, \"Server config\", for the list, or use a wildcard such as \"release.*\""
}

// notifyBlock decodes one notify "NAME" block.
func notifyBlock(dst *[]NotifyConfig) speccore.BlockFunc {
	return func(d *speccore.Decoder, b *hcl.Block, path string) {
		n := NotifyConfig{Name: b.Labels[0], Type: NotifyWebhook, Timeout: DefaultNotifyTimeout}
		d.Pos[path+".name"] = b.LabelRanges[0]
		d.Body(b.Body, path, b.DefRange, []speccore.Field{
			speccore.Attr("type", speccore.Str(&n.Type)),
			speccore.Attr("url", speccore.Str(&n.URL)),
			speccore.Attr("events", speccore.StrList(&n.Events)),
			speccore.Attr("secret_file", speccore.Str(&n.SecretFile)),
			speccore.Attr("timeout", speccore.Duration(&n.Timeout)),
		})
		*dst = append(*dst, n)
	}
}

// validateNotify checks the notify blocks and ui_url.
func (c *ServerConfig) validateNotify(ps *speccore.Problems) {
	if c.UIURL != "" {
		if u, err := url.Parse(c.UIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			ps.Add("ui_url", "must be an http:// or https:// URL without credentials or query (the dashboard's address as people open it), got %q", speccore.RedactURL(c.UIURL))
		}
	}
	seen := map[string]int{}
	for i, n := range c.Notify {
		p := speccore.Index("notify", i)
		speccore.CheckName(ps, p+".name", n.Name)
		if j, dup := seen[n.Name]; dup {
			ps.Add(p+".name", "target %q is defined twice (also notify[%d]); each target needs its own name", n.Name, j)
		}
		seen[n.Name] = i
		speccore.CheckEnum(ps, p+".type", n.Type, NotifyWebhook, NotifySlack)
		switch u, err := url.Parse(n.URL); {
		case n.URL == "":
			ps.Missing(p, "url")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			ps.Add(p+".url", "must be an http:// or https:// URL with a host, got %q", speccore.RedactURL(n.URL))
		case u.User != nil:
			ps.Add(p+".url", "must not hold credentials (user:password@); sign requests with secret_file instead")
		}
		if len(n.Events) == 0 {
			ps.Add(p+".events", "must list at least one event (\"gate.failed\", \"release.*\" or \"*\")")
		}
		for j, ev := range n.Events {
			if why := checkNotifyEvent(ev); why != "" {
				ps.Add(speccore.Index(p+".events", j), "%s", why)
			}
		}
		if n.SecretFile != "" && !filepath.IsAbs(n.SecretFile) {
			ps.Add(p+".secret_file", "must be an absolute path, got %q", n.SecretFile)
		}
		if n.Timeout < MinNotifyTimeout || n.Timeout > MaxNotifyTimeout {
			ps.Add(p+".timeout", "must be from %s to %s, got %s", MinNotifyTimeout, speccore.DurationText(MaxNotifyTimeout), n.Timeout)
		}
	}
}

// SecretFileMode returns a warning when a secret file can be read or
// written by others than its owner (mode & 0o077), or "" when it cannot
// or its mode cannot be read (reading it reports that).
func SecretFileMode(path string) string {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s has mode %04o: other users can read or change it; run chmod 600 %s", path, st.Mode().Perm(), path)
}
