package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"unicode/utf8"
	"unique"

	"github.com/hashicorp/memberlist"
)

// Role says what kind of process a gossip member is.
type Role string

const (
	// RoleServer is a coordinator: a raft voter that serves the gRPC API.
	RoleServer Role = "server"
	// RoleAgent is a host agent.
	RoleAgent Role = "agent"
)

// Meta is the metadata every member advertises through gossip. It travels in
// memberlist's node meta, so its encoding must stay within MetaMaxSize bytes.
type Meta struct {
	// Role is RoleServer or RoleAgent.
	Role Role
	// NodeID is the stable identity of the node (raft server ID for servers,
	// host ID for agents). Gossip node names may differ from it.
	NodeID string
	// GRPCAddr is the host:port where the node serves gRPC (required for
	// servers; optional for agents).
	GRPCAddr string
	// RaftAddr is the raft transport address (servers only, required there).
	RaftAddr string
	// Cell and Region place the node in the fleet.
	Cell, Region string
	// Version is the rollwave build version of the node.
	Version string
	// Leader is true on the server that currently believes it is the raft
	// leader (servers only).
	Leader bool
	// Term is the raft term of the leadership claim in Leader. When several
	// servers claim leadership at once (a stale claim not yet withdrawn), the
	// highest term wins. Servers only.
	Term uint64
	// Bootstrap is the bootstrap_expect the server was started with (servers
	// only; 0 means "not bootstrapping").
	Bootstrap int
	// Leaving is set by Pool.Leave just before the graceful leave broadcast so
	// peers can tell a member that left from one that failed: memberlist
	// v0.5.4 does not expose that distinction to its event delegate. Callers
	// do not set it.
	Leaving bool
}

// MetaMaxSize is the largest encoded Meta memberlist accepts.
const MetaMaxSize = memberlist.MetaMaxSize

// metaVersion is the leading byte of every encoded Meta. Additive changes
// (new fields) keep version 1 and use new tags, which older decoders skip; a
// new version byte is only for an incompatible layout.
const metaVersion byte = 1

// Field tags of the version-1 encoding. Never renumber or reuse a tag.
const (
	tagRole      = 1
	tagNodeID    = 2
	tagGRPCAddr  = 3
	tagRaftAddr  = 4
	tagCell      = 5
	tagRegion    = 6
	tagVersion   = 7
	tagLeader    = 8
	tagBootstrap = 9
	tagTerm      = 10
	tagLeaving   = 11
)

// ErrMetaTooLarge is returned (wrapped) by EncodeMeta when the encoding does
// not fit in MetaMaxSize bytes.
var ErrMetaTooLarge = errors.New("gossip: node meta too large")

// ErrBadMeta is returned (wrapped) by DecodeMeta for input that is not a
// valid encoded Meta.
var ErrBadMeta = errors.New("gossip: malformed node meta")

// EncodeMeta encodes m as a version byte followed by (tag, length, value)
// fields; zero-valued fields are omitted. It fails with ErrMetaTooLarge when
// the result exceeds MetaMaxSize. It does not check the fields' meaning; see
// Meta.Validate.
func EncodeMeta(m Meta) ([]byte, error) {
	if m.Bootstrap < 0 {
		return nil, fmt.Errorf("gossip: encode meta: Bootstrap %d is negative", m.Bootstrap)
	}
	buf := make([]byte, 0, 128)
	buf = append(buf, metaVersion)
	buf = appendString(buf, tagRole, string(m.Role))
	buf = appendString(buf, tagNodeID, m.NodeID)
	buf = appendString(buf, tagGRPCAddr, m.GRPCAddr)
	buf = appendString(buf, tagRaftAddr, m.RaftAddr)
	buf = appendString(buf, tagCell, m.Cell)
	buf = appendString(buf, tagRegion, m.Region)
	buf = appendString(buf, tagVersion, m.Version)
	buf = appendBool(buf, tagLeader, m.Leader)
	buf = appendUint(buf, tagBootstrap, uint64(m.Bootstrap))
	buf = appendUint(buf, tagTerm, m.Term)
	buf = appendBool(buf, tagLeaving, m.Leaving)
	if len(buf) > MetaMaxSize {
		return nil, fmt.Errorf("%w: encoded size %d bytes exceeds the limit of %d bytes (shorten node_id, addresses, cell, region or version)",
			ErrMetaTooLarge, len(buf), MetaMaxSize)
	}
	return buf, nil
}

// DecodeMeta decodes the output of EncodeMeta. Unknown tags (fields added by
// newer versions) are skipped; anything else that does not parse — wrong
// version byte, truncated field, invalid UTF-8, a known field twice — is an
// error wrapping ErrBadMeta that says where decoding stopped.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", ErrBadMeta)
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("%w: unsupported version byte %d (this build reads version %d)", ErrBadMeta, b[0], metaVersion)
	}
	seen := make(map[uint64]bool, 11)
	for off := 1; off < len(b); {
		tag, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return Meta{}, fmt.Errorf("%w: bad field tag at byte %d", ErrBadMeta, off)
		}
		off += n
		size, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return Meta{}, fmt.Errorf("%w: bad length of field %d at byte %d", ErrBadMeta, tag, off)
		}
		off += n
		if size > uint64(len(b)-off) {
			return Meta{}, fmt.Errorf("%w: field %d at byte %d claims %d bytes, only %d left", ErrBadMeta, tag, off, size, len(b)-off)
		}
		val := b[off : off+int(size)]
		off += int(size)
		if tag >= tagRole && tag <= tagLeaving {
			if seen[tag] {
				return Meta{}, fmt.Errorf("%w: field %d appears twice", ErrBadMeta, tag)
			}
			seen[tag] = true
		}
		if err := m.setField(tag, val); err != nil {
			return Meta{}, fmt.Errorf("%w: field %d: %v", ErrBadMeta, tag, err)
		}
	}
	return m, nil
}

// setField stores one decoded field; unknown tags are ignored on purpose.
func (m *Meta) setField(tag uint64, val []byte) error {
	var err error
	switch tag {
	case tagRole:
		var s string
		s, err = decodeShared(val)
		m.Role = Role(s)
	case tagNodeID:
		m.NodeID, err = decodeString(val)
	case tagGRPCAddr:
		m.GRPCAddr, err = decodeString(val)
	case tagRaftAddr:
		m.RaftAddr, err = decodeString(val)
	case tagCell:
		m.Cell, err = decodeShared(val)
	case tagRegion:
		m.Region, err = decodeShared(val)
	case tagVersion:
		m.Version, err = decodeShared(val)
	case tagLeader:
		m.Leader, err = decodeBool(val)
	case tagLeaving:
		m.Leaving, err = decodeBool(val)
	case tagTerm:
		m.Term, err = decodeUint(val)
	case tagBootstrap:
		var u uint64
		u, err = decodeUint(val)
		if err == nil && u > math.MaxInt32 {
			err = fmt.Errorf("bootstrap %d out of range", u)
		}
		m.Bootstrap = int(u)
	}
	return err
}

// Validate checks that m makes sense for its role: a known role, a node ID,
// well-formed addresses, and server-only fields only on servers.
func (m Meta) Validate() error {
	var errs []error
	switch m.Role {
	case RoleServer:
		if m.RaftAddr == "" {
			errs = append(errs, errors.New("Meta.RaftAddr is required for role server"))
		}
		if m.GRPCAddr == "" {
			errs = append(errs, errors.New("Meta.GRPCAddr is required for role server"))
		}
	case RoleAgent:
		if m.RaftAddr != "" || m.Leader || m.Term != 0 || m.Bootstrap != 0 {
			errs = append(errs, errors.New("Meta.RaftAddr, Leader, Term and Bootstrap are for role server only, not agent"))
		}
	default:
		errs = append(errs, fmt.Errorf("Meta.Role %q: want %q or %q", m.Role, RoleServer, RoleAgent))
	}
	if m.NodeID == "" {
		errs = append(errs, errors.New("Meta.NodeID is required"))
	}
	for _, a := range []struct{ field, val string }{{"GRPCAddr", m.GRPCAddr}, {"RaftAddr", m.RaftAddr}} {
		if a.val == "" {
			continue
		}
		if err := checkHostPort(a.val, false); err != nil {
			errs = append(errs, fmt.Errorf("Meta.%s %q: %w", a.field, a.val, err))
		}
	}
	if m.Bootstrap < 0 {
		errs = append(errs, fmt.Errorf("Meta.Bootstrap %d: must not be negative", m.Bootstrap))
	}
	return errors.Join(errs...)
}

// checkHostPort accepts "host:port" with a port in 0..65535 (0 only when
// allowZero); the host may be empty or a name.
func checkHostPort(s string, allowZero bool) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	if p < 0 || p > 65535 || (p == 0 && !allowZero) {
		lo := 1
		if allowZero {
			lo = 0
		}
		return fmt.Errorf("port %d out of range %d-65535", p, lo)
	}
	return nil
}

func appendField(buf []byte, tag uint64, val []byte) []byte {
	buf = binary.AppendUvarint(buf, tag)
	buf = binary.AppendUvarint(buf, uint64(len(val)))
	return append(buf, val...)
}

func appendString(buf []byte, tag uint64, s string) []byte {
	if s == "" {
		return buf
	}
	return appendField(buf, tag, []byte(s))
}

func appendBool(buf []byte, tag uint64, v bool) []byte {
	if !v {
		return buf
	}
	return appendField(buf, tag, []byte{1})
}

func appendUint(buf []byte, tag uint64, v uint64) []byte {
	if v == 0 {
		return buf
	}
	return appendField(buf, tag, binary.AppendUvarint(nil, v))
}

func decodeString(val []byte) (string, error) {
	if !utf8.Valid(val) {
		return "", errors.New("string is not valid UTF-8")
	}
	return string(val), nil
}

// decodeShared decodes a string most members share (role, cell, region,
// version) into one canonical copy per distinct value (Go's unique
// package), so a view of N members holds each such value once instead of
// N times: every member keeps a decoded Meta per member it knows.
func decodeShared(val []byte) (string, error) {
	s, err := decodeString(val)
	if err != nil || s == "" {
		return s, err
	}
	return unique.Make(s).Value(), nil
}

func decodeBool(val []byte) (bool, error) {
	if len(val) != 1 || val[0] > 1 {
		return false, fmt.Errorf("bool must be one byte 0 or 1, got % x", val)
	}
	return val[0] == 1, nil
}

func decodeUint(val []byte) (uint64, error) {
	v, n := binary.Uvarint(val)
	if n <= 0 || n != len(val) {
		return 0, fmt.Errorf("bad varint % x", val)
	}
	return v, nil
}
