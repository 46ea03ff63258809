package lease

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// BatchProtocol is the protocol from which a log entry may carry a Batch:
// below it the leader proposes every command in its own entry, so that
// nodes of an older release in the cluster can apply the log.
const BatchProtocol = 6

// MaxBatch bounds the commands of one Batch.
const MaxBatch = 1024

// Batch (protocol 6) is several commands in one log entry: the raft
// leader groups concurrent API writes into it so that they cost one log
// append, one fsync and one replication round instead of one each. Its
// commands are applied in order, at the entry's index, each exactly as if
// it were applied alone right after the one before it, and each keeps its
// own Result (in Result.Batch, in order; every one's Index is the
// entry's): a refused command changes nothing and does not stop the
// others. Only Batchable commands may be in a batch; any other, a nested
// batch included, is refused with ErrInvalidCommand in its place. An
// empty batch, or one over MaxBatch, is invalid as a whole.
//
// All commands of a batch share one index, so a batch holds only commands
// whose outcome does not depend on the index being theirs alone: the lease
// commands and the status and leader-settings writes (versions there are
// counters, not indexes). Relation data (whose versions are indexes), ports,
// registrations, operations, membership and the time advance are always
// proposed alone. Retry: each command retries as it would alone.
type Batch struct {
	Ops []Op
}

// Type implements Op.
func (Batch) Type() string { return "batch" }

// needs implements gated.
func (Batch) needs() (uint64, string) { return BatchProtocol, "batched log entries (batch)" }

// Batchable reports whether op may be one of a Batch's commands.
func Batchable(op Op) bool {
	switch op.(type) {
	case Claim, Extend, Revoke, RequestStepDown, PinLease, UnpinLease,
		SetLeaderSettings, SetUnitStatus, SetApplicationVersion, SetApplicationStatus:
		return true
	}
	return false
}

// batchWire is a Batch's payload: the envelopes (see Encode) of its
// commands.
type batchWire struct {
	Commands []json.RawMessage `json:"commands"`
}

// MarshalJSON encodes the batch's payload: each command's envelope.
func (b Batch) MarshalJSON() ([]byte, error) {
	w := batchWire{Commands: make([]json.RawMessage, len(b.Ops))}
	for i, op := range b.Ops {
		data, err := Encode(op)
		if err != nil {
			return nil, err
		}
		w.Commands[i] = data
	}
	return json.Marshal(w)
}

// batchEnvelopes is how a batch's payload is decoded: the commands'
// envelopes in the same pass, so each payload is scanned once less.
type batchEnvelopes struct {
	Commands []Command `json:"commands"`
}

// decodeBatch decodes a batch's payload. A payload whose envelopes do not
// decode (an unknown field in one) refuses the whole batch; a command
// whose own version, type or payload does not decode is kept as a badOp,
// so that it gets its own error result.
func decodeBatch(raw json.RawMessage) (Op, error) {
	var w batchEnvelopes
	if err := strictUnmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("cannot decode batch command: %w: %w", err, ErrInvalidCommand)
	}
	b := Batch{Ops: make([]Op, len(w.Commands))}
	for i, c := range w.Commands {
		op, err := decodeCommand(c)
		if err != nil {
			op = badOp{err: err}
		}
		b.Ops[i] = op
	}
	return b, nil
}

// EncodeBatch returns the envelope of a Batch of already encoded commands
// (each an Encode result), without decoding and encoding them again: what
// the raft leader's batcher proposes.
func EncodeBatch(cmds [][]byte) []byte {
	n := 64
	for _, c := range cmds {
		n += len(c) + 1
	}
	var buf bytes.Buffer
	buf.Grow(n)
	buf.WriteString(envelopeHead + Batch{}.Type() + envelopeMid + `{"commands":[`)
	for i, c := range cmds {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(c)
	}
	buf.WriteString(`]}}`)
	return buf.Bytes()
}

func (b Batch) apply(s *State, index uint64) Result {
	if len(b.Ops) == 0 || len(b.Ops) > MaxBatch {
		return invalid("apply batch", "%d commands (want 1 to %d)", len(b.Ops), MaxBatch)
	}
	results := make([]Result, len(b.Ops))
	for i, op := range b.Ops {
		var res Result
		switch op := op.(type) {
		case badOp:
			res.Err = op.err
		default:
			if !Batchable(op) {
				res = invalid("apply batch", "command %d: %s cannot be batched", i, op.Type())
			} else if err := RefuseNewer(op, s.EffectiveVersion); err != nil {
				res.Err = err
			} else {
				res = op.apply(s, index)
			}
		}
		res.Index = index
		results[i] = res
	}
	return Result{Batch: results}
}

// badOp stands for a batch's command that did not decode.
type badOp struct{ err error }

func (badOp) Type() string                  { return "invalid" }
func (o badOp) apply(*State, uint64) Result { return Result{Err: o.err} }
