package raftfsm

import (
	"fmt"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// A handler validates a command completely and only then mutates the state,
// so a rejected command changes nothing. It runs with the state's write lock
// held, in the entry's write transaction; objects it reads are stored ones,
// so it stores a changed clone, never modifies one. The result is nil or
// *UpdateResult.
type handler struct {
	newMsg func() proto.Message
	apply  func(v *view, index uint64, msg proto.Message) (any, error)
}

// handlers is filled at init and read-only afterwards.
var handlers = map[MessageType]handler{}

// register adds the handler for t. Registering a type twice is a programming
// error and panics at start-up, never at apply time.
func register[M proto.Message](t MessageType, fn func(v *view, index uint64, cmd M) (any, error)) {
	if t.Ignorable() {
		panic(fmt.Sprintf("raftfsm: register %v: the ignore flag is not part of a type's number", t))
	}
	if _, dup := handlers[t]; dup {
		panic(fmt.Sprintf("raftfsm: command type %v registered twice", t))
	}
	var zero M
	handlers[t] = handler{
		// Generated messages answer ProtoReflect on a nil pointer.
		newMsg: func() proto.Message { return zero.ProtoReflect().New().Interface() },
		apply: func(v *view, index uint64, msg proto.Message) (any, error) {
			return fn(v, index, msg.(M))
		},
	}
}

// noResult adapts handlers that only succeed or reject.
func noResult[M proto.Message](fn func(v *view, index uint64, cmd M) error) func(*view, uint64, M) (any, error) {
	return func(v *view, index uint64, cmd M) (any, error) { return nil, fn(v, index, cmd) }
}

func init() {
	register(UpsertHosts, noResult(applyUpsertHosts))
	register(DeleteHost, noResult(applyDeleteHost))
	register(SetCell, noResult(applySetCell))
	register(DeleteCell, noResult(applyDeleteCell))
	register(SubmitRelease, noResult(applySubmitRelease))
	register(SetReleaseState, noResult(applySetReleaseState))
	register(SetPhaseState, noResult(applySetPhaseState))
	register(ApprovePhase, noResult(applyApprovePhase))
	register(CreateAssignments, noResult(applyCreateAssignments))
	register(UpdateAssignments, func(v *view, index uint64, cmd *v1.UpdateAssignmentsCommand) (any, error) {
		return applyUpdateAssignments(v, index, cmd), nil
	})
	register(AppendEvents, noResult(applyAppendEvents))
	register(AddFreeze, noResult(applyAddFreeze))
	register(RemoveFreeze, noResult(applyRemoveFreeze))
	register(SetGlobalFreeze, noResult(applySetGlobalFreeze))
	register(SetReleasePlan, noResult(applySetReleasePlan))
	register(AdvancePhase, noResult(applyAdvancePhase))
	register(ACLBootstrap, noResult(applyACLBootstrap))
	register(UpsertACLToken, noResult(applyUpsertACLToken))
	register(DeleteACLToken, noResult(applyDeleteACLToken))
	register(AbortRelease, noResult(applyAbortRelease))
	register(Prune, noResult(applyPrune))
	register(SetNotifyCursors, noResult(applySetNotifyCursors))
	register(AckRelease, noResult(applyAckRelease))
	register(OverrideFreeze, noResult(applyOverrideFreeze))
	register(SubmitChain, noResult(applySubmitChain))
	register(StartChainStep, noResult(applyStartChainStep))
	register(SetChainState, noResult(applySetChainState))
	register(SetRegionState, noResult(applySetRegionState))
}
