package raftfsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
)

// applyCommand applies one decoded command at a raft index. It is the whole
// of Apply's logic, free of raft types, so log replay and recovery tools can
// drive it directly.
//
// It returns (nil, nil) on success, (nil, *RejectedError) when the command
// was refused (state unchanged), or (*UpdateResult, nil) for
// UpdateAssignments. The applied index advances in every case. An unknown
// type panics unless it carries IgnoreUnknownTypeFlag, in which case it is
// skipped (logged, nil result).
func applyCommand(s *State, logger *slog.Logger, index uint64, t MessageType, msg proto.Message) (any, error) {
	h, ok := handlers[t.Base()]
	if !ok && !t.Ignorable() {
		panic(unknownTypePanic(t, index))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	defer s.appliedIndex.Store(index)
	if !ok {
		logger.Warn("skipping unknown command type marked ignorable", "type", uint8(t), "index", index)
		return nil, nil
	}
	// One write transaction per entry: a rejected command aborts it, so it
	// changes nothing whatever the handler did before rejecting.
	v := &view{tx: s.db.Load().Txn(true)}
	res, err := h.apply(v, index, msg)
	if err != nil {
		v.tx.Abort()
		var rej *RejectedError
		if errors.As(err, &rej) {
			rej.Type = t.Base()
		}
		logger.Debug("command rejected", "type", t.Base().String(), "index", index, "error", err)
		return nil, err
	}
	v.tx.Commit()
	return res, nil
}

func unknownTypePanic(t MessageType, index uint64) string {
	return fmt.Sprintf("raftfsm: unknown command type %d at index %d: refusing to apply; upgrade this server", uint8(t), index)
}

// FSM adapts State to raft.FSM.
//
// Apply returns one of:
//   - nil: the command was applied (or was an ignorable unknown type);
//   - error (*RejectedError): the command was refused and changed nothing;
//   - *UpdateResult: an UpdateAssignments batch, with applied/skipped counts.
//
// Apply panics on an entry it cannot apply safely: an unknown type without
// IgnoreUnknownTypeFlag, or a body that does not decode. Carrying on would
// let this server's state diverge from its peers'.
type FSM struct {
	state  *State
	logger *slog.Logger
}

var _ raft.FSM = (*FSM)(nil)

// New returns an FSM over an empty state. A nil logger discards logs.
func New(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{state: NewState(), logger: logger.With("component", "raftfsm")}
}

// State returns the state the FSM maintains. The pointer stays valid across
// Restore.
func (f *FSM) State() *State { return f.state }

// Apply implements raft.FSM. See the type's comment for the result contract.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	res, err := f.ApplyEntry(l.Index, l.Data)
	if err != nil {
		return err
	}
	if res != nil {
		return res
	}
	return nil
}

// ApplyEntry decodes and applies one encoded log entry at index; it is what
// Apply does with a raft.Log, for replay without raft. Results and panics
// are those of Apply.
func (f *FSM) ApplyEntry(index uint64, data []byte) (*UpdateResult, error) {
	t, msg, err := Decode(data)
	switch {
	case errors.Is(err, ErrUnknownType):
		// applyCommand skips or panics as the flag says.
	case err != nil:
		panic(fmt.Sprintf("raftfsm: cannot decode command %v at index %d: %v: refusing to apply; upgrade this server or repair the log", t, index, err))
	}
	res, err := applyCommand(f.state, f.logger, index, t, msg)
	if err != nil {
		return nil, err
	}
	if ur, ok := res.(*UpdateResult); ok {
		return ur, nil
	}
	return nil, nil
}

// Snapshot implements raft.FSM: it takes a memdb read transaction, a
// point-in-time view that costs O(1) whatever the size of the state;
// Persist does the encoding and I/O while Apply carries on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	v, idx := f.state.pointInTime()
	return &fsmSnapshot{data: v, index: idx}, nil
}

// Restore implements raft.FSM: it reads a whole snapshot into a fresh state,
// checks it, and only then replaces the current state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("raftfsm: restore: %w", err)
	}
	f.state.replaceWith(fresh)
	f.logger.Info("restored snapshot", "applied_index", f.state.AppliedIndex())
	return nil
}
