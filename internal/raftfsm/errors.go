package raftfsm

import (
	"errors"
	"fmt"
)

// Sentinels wrapped by RejectedError, for callers that branch on the kind
// of rejection (errors.Is).
var (
	// ErrInvalid: a field is missing or out of range.
	ErrInvalid = errors.New("invalid command")
	// ErrNotFound: the command names an object that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the command creates an object whose id is taken.
	ErrExists = errors.New("already exists")
	// ErrConflict: the command clashes with current state (an active release,
	// an assignment still running, hosts still in a cell, ...).
	ErrConflict = errors.New("conflict")
	// ErrIllegalTransition: the requested state change is not in the state machine.
	ErrIllegalTransition = errors.New("illegal state transition")
	// ErrPermissionDenied: the caller may not do this (an ACL token's role,
	// a certificate's role). The FSM itself never returns it; it is here
	// so that every error kind the API knows is one sentinel of this list.
	ErrPermissionDenied = errors.New("permission denied")
)

// RejectedError is what Apply returns for a command it refused. Rejection is
// deterministic — every server refuses the same command the same way — and a
// rejected command changes nothing. Error() is meant for the operator.
type RejectedError struct {
	// Type is the command that was refused.
	Type MessageType
	// Reason says what was wrong and, where it helps, what to do.
	Reason string
	// Err is one of the sentinels above.
	Err error
}

func (e *RejectedError) Error() string { return e.Reason }

// Unwrap lets errors.Is match the sentinel.
func (e *RejectedError) Unwrap() error { return e.Err }

// reject builds a RejectedError; the handler's command type is filled in by
// applyCommand.
func reject(kind error, format string, args ...any) *RejectedError {
	return &RejectedError{Reason: fmt.Sprintf(format, args...), Err: kind}
}

// UpdateResult is Apply's result for an UpdateAssignments batch: updates for
// a stale or unknown generation, or with an illegal transition, are skipped
// individually instead of failing the whole batch.
type UpdateResult struct {
	Applied int
	Skipped int
}
