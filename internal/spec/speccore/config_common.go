package speccore

import (
	"os"
)

// Log levels accepted by log_level.
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"
)

// DefaultRegion is the region of servers and agents that do not set one.
const DefaultRegion = "global"

// NodeNameRE covers node, cell and region names: they travel in gossip
// metadata and appear in logs and CLI output.
var NodeNameRE = BoundedName(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 128)

// Hostname returns the host's name, or "" when it cannot be read (Validate
// then asks for node_name).
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// CheckName validates a node, cell or region name at p.
func CheckName(ps *Problems, p, v string) {
	if v == "" {
		ps.Add(p, "must not be empty")
	} else if !NodeNameRE.MatchString(v) {
		ps.Add(p, "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", v)
	}
}

// CheckJoin validates a list of gossip addresses to join.
func CheckJoin(ps *Problems, p string, join []string) {
	for i, a := range join {
		if msg := checkAdvertise(a); msg != "" {
			ps.Add(Index(p, i), "%s", msg)
		}
	}
}

// CheckBind validates a listen address; port 0 means "pick a free port".
func CheckBind(ps *Problems, p, addr string) {
	if addr == "" {
		ps.Add(p, `must not be empty; expected host:port such as "127.0.0.1:7420"`)
	} else if msg := CheckHostPort(addr, 0); msg != "" {
		ps.Add(p, "%s", msg)
	}
}

// CheckAdvertiseField validates an optional advertised address.
func CheckAdvertiseField(ps *Problems, p, addr string) {
	if addr == "" {
		return
	}
	if msg := checkAdvertise(addr); msg != "" {
		ps.Add(p, "%s", msg)
	}
}
