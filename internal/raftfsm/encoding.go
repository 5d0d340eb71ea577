package raftfsm

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// MessageType is the first byte of every raft log entry and names the command
// in the protobuf body that follows. Numbers are forever: never renumber or
// reuse one; a new command gets a new number.
type MessageType uint8

// Command types. The numbering is part of the on-disk format.
const (
	UpsertHosts       MessageType = 1
	DeleteHost        MessageType = 2
	SetCell           MessageType = 3
	DeleteCell        MessageType = 4
	SubmitRelease     MessageType = 5
	SetReleaseState   MessageType = 6
	SetPhaseState     MessageType = 7
	ApprovePhase      MessageType = 8
	CreateAssignments MessageType = 9
	UpdateAssignments MessageType = 10
	AppendEvents      MessageType = 11
	AddFreeze         MessageType = 12
	RemoveFreeze      MessageType = 13
	SetGlobalFreeze   MessageType = 14
	// SetReleasePlan (body: SubmitReleaseCommand carrying only the release
	// id and its phases) replaces the plan of a release none of whose
	// phases has started: the orchestrator plans again at start.
	SetReleasePlan MessageType = 15
	// AdvancePhase (body: SetReleaseStateCommand; its state must be
	// running or unspecified) moves a running release's current phase to
	// the next one, once the current phase is verified.
	AdvancePhase MessageType = 16
	// ACLBootstrap (body: ACLBootstrapCommand) stores the first, admin,
	// token; accepted once per cluster.
	ACLBootstrap MessageType = 17
	// UpsertACLToken (body: UpsertACLTokenCommand) adds a token.
	UpsertACLToken MessageType = 18
	// DeleteACLToken (body: DeleteACLTokenCommand) removes a token.
	DeleteACLToken MessageType = 19
	// AbortRelease (body: SetReleaseStateCommand; its state must be
	// aborted) aborts a live release, rolling_back included: hosts stay
	// where they are. SetReleaseState keeps refusing rolling_back ->
	// aborted: entries written before type 20 that tried it were
	// rejected, and replaying them must reject them again.
	AbortRelease MessageType = 20
	// Prune (body: PruneCommand) drops finished releases beyond the
	// retention count, with their events and assignment history, and
	// events older than the retention age. The leader's GC writes it.
	Prune MessageType = 21
	// SetNotifyCursors (body: SetNotifyCursorsCommand) records how far
	// the audit log was delivered to each notification target. Written
	// with IgnoreUnknownTypeFlag: cursors change no other state, so a
	// server that predates them may skip the entry.
	SetNotifyCursors MessageType = 22
	// AckRelease (body: AckReleaseCommand) records an operator's
	// acknowledgement of a failed release, once.
	AckRelease MessageType = 23
	// OverrideFreeze (body: OverrideFreezeCommand) lets one live release
	// start phases, and its hosts swaps, inside freeze windows: an
	// admin's audited emergency override.
	OverrideFreeze MessageType = 24
	// SubmitChain (body: SubmitChainCommand) stores a release chain and
	// submits its first step's release, pending, in the same entry.
	SubmitChain MessageType = 27
	// StartChainStep (body: StartChainStepCommand) submits and starts the
	// release of a chain's next step, or a chain rollback's revert
	// release, with the leader's evidence.
	StartChainStep MessageType = 28
	// SetChainState (body: SetChainStateCommand) moves a chain to another
	// state with its evidence.
	SetChainState MessageType = 29
	// SetRegionState (body: SetRegionStateCommand) moves one region of a
	// release with parallel regions (phases.parallel_regions_after):
	// start it, advance its phase, end it succeeded, or roll it back
	// alone (rollback.on_failure = "fail_local").
	SetRegionState MessageType = 31
)

// IgnoreUnknownTypeFlag is set on the type byte of a command that servers
// which do not know it may skip. Without it an unknown type stops the server:
// skipping a command other servers apply would make their states diverge.
const IgnoreUnknownTypeFlag MessageType = 0x80

var messageTypeNames = map[MessageType]string{
	UpsertHosts:       "UpsertHosts",
	DeleteHost:        "DeleteHost",
	SetCell:           "SetCell",
	DeleteCell:        "DeleteCell",
	SubmitRelease:     "SubmitRelease",
	SetReleaseState:   "SetReleaseState",
	SetPhaseState:     "SetPhaseState",
	ApprovePhase:      "ApprovePhase",
	CreateAssignments: "CreateAssignments",
	UpdateAssignments: "UpdateAssignments",
	AppendEvents:      "AppendEvents",
	AddFreeze:         "AddFreeze",
	RemoveFreeze:      "RemoveFreeze",
	SetGlobalFreeze:   "SetGlobalFreeze",
	SetReleasePlan:    "SetReleasePlan",
	AdvancePhase:      "AdvancePhase",
	ACLBootstrap:      "ACLBootstrap",
	UpsertACLToken:    "UpsertACLToken",
	DeleteACLToken:    "DeleteACLToken",
	AbortRelease:      "AbortRelease",
	Prune:             "Prune",
	SetNotifyCursors:  "SetNotifyCursors",
	AckRelease:        "AckRelease",
	OverrideFreeze:    "OverrideFreeze",
	SubmitChain:       "SubmitChain",
	StartChainStep:    "StartChainStep",
	SetChainState:     "SetChainState",
	SetRegionState:    "SetRegionState",
}

// Base returns t without IgnoreUnknownTypeFlag.
func (t MessageType) Base() MessageType { return t &^ IgnoreUnknownTypeFlag }

// Ignorable reports whether t carries IgnoreUnknownTypeFlag.
func (t MessageType) Ignorable() bool { return t&IgnoreUnknownTypeFlag != 0 }

// String returns the command name, e.g. "SubmitRelease", with
// "|IgnoreUnknown" appended when the flag is set, or "MessageType(N)" for a
// number this server does not know.
func (t MessageType) String() string {
	name, ok := messageTypeNames[t.Base()]
	if !ok {
		name = fmt.Sprintf("MessageType(%d)", uint8(t.Base()))
	}
	if t.Ignorable() {
		name += "|IgnoreUnknown"
	}
	return name
}

// Errors returned by Encode and Decode.
var (
	// ErrUnknownType: the type byte names no command this server knows.
	ErrUnknownType = errors.New("unknown command type")
	// ErrEmptyEntry: the entry has no type byte.
	ErrEmptyEntry = errors.New("empty log entry")
	// ErrBadBody: the body does not decode as the command its type names.
	ErrBadBody = errors.New("malformed command body")
	// ErrWrongMessage: Encode was given a message that does not belong to the type.
	ErrWrongMessage = errors.New("message does not match command type")
)

// marshalOpts makes encodings stable (sorted map keys), which keeps golden
// files and snapshots byte-identical across runs.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Encode returns a log entry: the type byte followed by msg, protobuf-encoded.
// t may carry IgnoreUnknownTypeFlag. msg must be the command message that the
// type names (e.g. *rollwavev1.SubmitReleaseCommand for SubmitRelease).
func Encode(t MessageType, msg proto.Message) ([]byte, error) {
	h, ok := handlers[t.Base()]
	if !ok {
		return nil, fmt.Errorf("encode %v: %w", t, ErrUnknownType)
	}
	if msg == nil {
		return nil, fmt.Errorf("encode %v: nil message: %w", t, ErrWrongMessage)
	}
	want := h.newMsg().ProtoReflect().Descriptor().FullName()
	if got := msg.ProtoReflect().Descriptor().FullName(); got != want {
		return nil, fmt.Errorf("encode %v: got %s, want %s: %w", t, got, want, ErrWrongMessage)
	}
	body, err := marshalOpts.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %v: %w", t, err)
	}
	buf := make([]byte, 0, 1+len(body))
	buf = append(buf, byte(t))
	return append(buf, body...), nil
}

// Decode splits a log entry into its type and command message. The returned
// type is the byte as written, flag included. For a type this server does
// not know it returns that type and an error wrapping ErrUnknownType; the
// caller decides whether the flag lets it skip the entry.
func Decode(buf []byte) (MessageType, proto.Message, error) {
	if len(buf) == 0 {
		return 0, nil, ErrEmptyEntry
	}
	t := MessageType(buf[0])
	h, ok := handlers[t.Base()]
	if !ok {
		return t, nil, fmt.Errorf("decode %v: %w", t, ErrUnknownType)
	}
	msg := h.newMsg()
	if err := proto.Unmarshal(buf[1:], msg); err != nil {
		return t, nil, fmt.Errorf("decode %v: %w: %w", t, ErrBadBody, err)
	}
	return t, msg, nil
}
