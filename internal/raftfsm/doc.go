// Package raftfsm is rollwave's replicated state machine: the state every
// coordinator holds (hosts, cells, apps, releases with their plans, per-host
// assignments, the audit log, freeze windows), the raft log commands that
// change it, their versioned encoding, Apply, snapshot/restore and the
// invariants that must hold between any two commands.
//
// The package is pure: no network, no clock reads, no randomness. Time and
// ids travel inside each command, so every server that applies the same log
// reaches byte-for-byte the same state.
package raftfsm
