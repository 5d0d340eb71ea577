package speccore

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Helpers and values used by both the agent's config and the release spec
// (internal/spec). The release-spec values here are the ones the agent acts
// on when it reads an assignment.

// UserRE accepts a user name or numeric id for systemd's User=.
var UserRE = BoundedName(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`, 32)

// Sub decodes a nested block whose body holds fields.
func Sub(fields ...Field) BlockFunc {
	return func(d *Decoder, b *hcl.Block, path string) {
		d.Body(b.Body, path, b.DefRange, fields)
	}
}

// hardeningKey is a systemd [Service] setting name.
var hardeningKey = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// CheckEnum reports v unless it is one of allowed.
func CheckEnum(ps *Problems, p, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ps.Add(p, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

// Positive reports a duration that is zero or negative.
func Positive(ps *Problems, p string, d time.Duration) {
	if d <= 0 {
		ps.Add(p, "must be a positive duration, got %s", d)
	}
}

// SortedKeys returns m's keys in order, so Validate reports map entries
// deterministically.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckDistinct reports two endpoints bound to the same non-zero port on
// the same host.
func CheckDistinct(ps *Problems, p string, addrs map[string]string, order []string) {
	seen := map[string]string{}
	for _, name := range order {
		host, port := SplitPort(addrs[name])
		if port == 0 {
			continue
		}
		key := fmt.Sprintf("%s:%d", host, port)
		if other, dup := seen[key]; dup {
			ps.Add(p+"."+name, "%s is also %s.%s; each endpoint needs its own port", addrs[name], p, other)
			continue
		}
		seen[key] = name
	}
}

// WatchKeepOld is the old slot's state during post_rollout.watch.
type WatchKeepOld string

const (
	// WatchKeepHot keeps the old slot running: rollback is a traffic switch.
	WatchKeepHot WatchKeepOld = "hot"
	// WatchKeepStopped keeps the old slot's files; rollback starts it.
	WatchKeepStopped WatchKeepOld = "stopped"
)

// ControlPlaneLoss says what a baking host does when it loses the leader
// and its gossip peers see no live coordinator either.
type ControlPlaneLoss string

const (
	// ControlPlaneLossHold keeps the new version while the host's own
	// health checks pass, and reverts at once when they fail (default).
	ControlPlaneLossHold ControlPlaneLoss = "hold"
	// ControlPlaneLossRevert reverts after isolation_timeout, as an
	// isolated host does.
	ControlPlaneLossRevert ControlPlaneLoss = "revert"
)

// Quantity is a count of hosts or a percentage of the targeted hosts.
type Quantity struct {
	// Value is the count or the percentage (0-100).
	Value float64
	// Percent marks Value as a percentage.
	Percent bool
}

// Of resolves q against a total: a count is returned as is, a percentage
// is rounded down (so "5%" of 10 hosts is 0).
func (q Quantity) Of(total int) int {
	if !q.Percent {
		return int(q.Value)
	}
	return int(math.Floor(q.Value * float64(total) / 100))
}

// String formats q as it is written in a spec: "3" or "25%".
func (q Quantity) String() string {
	s := strconv.FormatFloat(q.Value, 'f', -1, 64)
	if q.Percent {
		s += "%"
	}
	return s
}

// SplitPort returns addr's host and numeric port (0 when unparsable).
func SplitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// DefaultIsolationTimeout is a release's rollback.isolation_timeout when
// the spec does not set it; the agent applies it to assignments that carry
// none.
const DefaultIsolationTimeout = 30 * time.Second
