package lease_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

// sameError compares errors by message: a batch and a lone command build
// their own error values.
var sameError = cmp.Comparer(func(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
})

var batchUnits = []string{"db/0", "db/1", "db/2", "web/0", "web/1"}

// newBatchFSM is an FSM at protocol 6 with batchUnits registered, at
// global time base, its last index returned.
func newBatchFSM(t *testing.T) (*lease.FSM, uint64) {
	t.Helper()
	f := lease.NewFSM()
	var index uint64
	for _, op := range append([]lease.Op{lease.AdvanceTime{New: base}, lease.SetEffectiveVersion{Old: 1, New: lease.BatchProtocol}},
		registrations(batchUnits)...) {
		index++
		if res := f.Apply(index, mustEncode(t, op)); res.Err != nil {
			t.Fatalf("%s: %v", op.Type(), res.Err)
		}
	}
	return f, index
}

func registrations(units []string) []lease.Op {
	var ops []lease.Op
	for _, u := range units {
		ops = append(ops, lease.RegisterUnit{Name: u, TokenHash: lease.HashToken("token-" + u)})
	}
	return ops
}

func mustEncode(t *testing.T, op lease.Op) []byte {
	t.Helper()
	data, err := lease.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// randomBatchable is a random command lease.Batchable allows, valid or
// not: any unit of any application (a unit of another one too, or none),
// any term (current, stale or zero), durations in and out of range,
// statuses known and unknown.
func randomBatchable(r *rand.Rand, terms map[string]uint64) lease.Op {
	// Mostly valid, so that batches change the state and later commands
	// meet what earlier ones did; now and then not.
	pick := func(valid, invalid []string) string {
		if r.IntN(12) == 0 {
			return invalid[r.IntN(len(invalid))]
		}
		return valid[r.IntN(len(valid))]
	}
	unit := pick(batchUnits, []string{"db/9", "nope"})
	app := appOf(unit)
	if r.IntN(12) == 0 {
		app = []string{"db", "web", "ghost"}[r.IntN(3)]
	}
	d := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}[r.IntN(3)]
	if r.IntN(12) == 0 {
		d = []time.Duration{0, lease.MaxDuration + 1}[r.IntN(2)]
	}
	term := []uint64{0, terms[app], terms[app], terms[app] + 1, max(terms[app], 1) - 1}[r.IntN(5)]
	entity := pick([]string{"op", "upgrade"}, []string{""})
	switch r.IntN(10) {
	case 0, 1:
		return lease.Claim{App: app, Unit: unit, Duration: d}
	case 2, 3:
		return lease.Extend{App: app, Unit: unit, Duration: d, Term: term}
	case 4:
		return lease.Revoke{App: app, Unit: unit, Term: term}
	case 5:
		if r.IntN(2) == 0 {
			return lease.RequestStepDown{App: app, Term: term}
		}
		return lease.UnpinLease{App: app, Entity: entity}
	case 6:
		var until *time.Time
		if r.IntN(3) == 0 {
			until = ptr(base.Add(time.Duration(r.IntN(120)) * time.Second))
		}
		return lease.PinLease{App: app, Entity: entity, Reason: "r", Until: until}
	case 7:
		return lease.SetLeaderSettings{App: app, Unit: unit, Term: term,
			Changes: map[string]string{"k": fmt.Sprint(r.IntN(3)), "gone": ""}}
	case 8:
		kind := pick([]string{lease.StatusWorkload, lease.StatusAgent}, []string{"bogus"})
		status := pick([]string{"active", "idle", "blocked", "executing"}, []string{"weird"})
		return lease.SetUnitStatus{Unit: unit, Kind: kind, Status: status, Message: fmt.Sprint(r.IntN(2))}
	default:
		if r.IntN(2) == 0 {
			return lease.SetApplicationVersion{Unit: unit, Version: fmt.Sprint(r.IntN(2))}
		}
		return lease.SetApplicationStatus{App: app, Unit: unit, Term: term, Status: "active", Message: fmt.Sprint(r.IntN(2))}
	}
}

// collapse maps every index of a sequential run back to the index its
// batch was applied at: run[i] is the batch index of sequential index i
// (absent: the same in both).
func collapse(st *lease.State, run map[uint64]uint64) {
	m := func(i uint64) uint64 {
		if b, ok := run[i]; ok {
			return b
		}
		return i
	}
	st.Index = m(st.Index)
	for _, a := range st.Applications {
		a.ModifyIndex = m(a.ModifyIndex)
	}
	for _, u := range st.Units {
		u.ModifyIndex = m(u.ModifyIndex)
	}
	for _, r := range st.Relations {
		r.ModifyIndex = m(r.ModifyIndex)
	}
}

func snapshotOf(t *testing.T, st *lease.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := lease.WriteSnapshot(&buf, st); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBatchMatchesOneByOne is the property of Batch: applied through the
// FSM from its wire form, a batch of random batchable commands gives each
// command the result that applying them one by one in the same order gives
// (but for the index, which the batch's commands share), and leaves the
// same state and the same snapshot, with the sequential run's indexes
// collapsed to its batch's. Rounds of batches (1 to 40 commands) alternate
// with time advances that expire leases and pins, over many seeds.
func TestBatchMatchesOneByOne(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	var commands, refused, changed int
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 20))
		batched, index := newBatchFSM(t)
		seq, _ := newBatchFSM(t)
		seqIndex := index
		run := map[uint64]uint64{}
		now := time.Duration(0)
		for round := range 30 {
			terms := map[string]uint64{}
			for _, a := range batched.Applications() {
				terms[a.Name] = a.Lease.Term
			}
			n := 1 + r.IntN(40)
			ops := make([]lease.Op, n)
			cmds := make([][]byte, n)
			for i := range ops {
				ops[i] = randomBatchable(r, terms)
				cmds[i] = mustEncode(t, ops[i])
			}
			index++
			before := batched.Index()
			got := batched.Apply(index, lease.EncodeBatch(cmds))
			if got.Err != nil || len(got.Batch) != n {
				t.Fatalf("seed %d round %d: batch of %d: %v, %d results", seed, round, n, got.Err, len(got.Batch))
			}
			if batched.Index() != before {
				changed++
			}
			for i, op := range ops {
				seqIndex++
				run[seqIndex] = index
				want := seq.Apply(seqIndex, cmds[i])
				if want.Index != seqIndex || got.Batch[i].Index != index {
					t.Fatalf("seed %d round %d command %d: indexes %d and %d", seed, round, i, want.Index, got.Batch[i].Index)
				}
				want.Index = index
				if diff := cmp.Diff(want, got.Batch[i], sameError); diff != "" {
					t.Fatalf("seed %d round %d command %d (%s %+v): batched result differs (-alone +batched):\n%s",
						seed, round, i, op.Type(), op, diff)
				}
				commands++
				if want.Err != nil {
					refused++
				}
			}
			wantState := seq.State()
			collapse(wantState, run)
			if diff := cmp.Diff(wantState, batched.State(), ignoreScratch); diff != "" {
				t.Fatalf("seed %d round %d: states differ (-one by one +batched):\n%s", seed, round, diff)
			}
			if err := batched.State().Validate(); err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
			if w, g := snapshotOf(t, wantState), snapshotOf(t, batched.State()); !bytes.Equal(w, g) {
				t.Fatalf("seed %d round %d: snapshots differ:\n%s\n%s", seed, round, w, g)
			}
			// Time passes alike for both, at their own next index.
			next := now + time.Duration(r.IntN(20))*time.Second
			adv := mustEncode(t, lease.AdvanceTime{Old: at(now), New: at(next), Slack: slack})
			index++
			seqIndex++
			run[seqIndex] = index
			if a, b := batched.Apply(index, adv), seq.Apply(seqIndex, adv); a.Err != nil || b.Err != nil {
				t.Fatalf("seed %d round %d: advance: %v, %v", seed, round, a.Err, b.Err)
			}
			now = next
		}
	}
	// The generator must reach both outcomes, and batches must change state.
	if refused == 0 || refused == commands || changed == 0 {
		t.Fatalf("%d commands, %d refused, %d batches changed the state: the generator is too narrow", commands, refused, changed)
	}
	t.Logf("%d commands in batches, %d refused", commands, refused)
}

// TestBatchRefusals: a command that may not be batched, a nested batch or
// a command that does not decode is refused in its place, and the others
// apply; an empty batch is invalid; below protocol 6 the whole batch is
// refused and changes nothing.
func TestBatchRefusals(t *testing.T) {
	f, index := newBatchFSM(t)
	nested := mustEncode(t, lease.Batch{Ops: []lease.Op{claim("db/1", dur)}})
	cmds := [][]byte{
		mustEncode(t, claim("db/0", dur)),
		mustEncode(t, lease.RegisterUnit{Name: "db/7", TokenHash: lease.HashToken("x")}),
		nested,
		[]byte(`{"version":1,"type":"claim","payload":{"app":"db","bogus":1}}`),
		mustEncode(t, claim("web/0", dur)),
	}
	index++
	res := f.Apply(index, lease.EncodeBatch(cmds))
	if res.Err != nil || len(res.Batch) != len(cmds) {
		t.Fatalf("batch: %v, %d results", res.Err, len(res.Batch))
	}
	for i, want := range []error{nil, lease.ErrInvalidCommand, lease.ErrInvalidCommand, lease.ErrInvalidCommand, nil} {
		if got := res.Batch[i].Err; !errors.Is(got, want) || (want == nil) != (got == nil) {
			t.Errorf("command %d: %v, want %v", i, got, want)
		}
	}
	if _, ok := f.Unit("db/7"); ok {
		t.Error("a registration in a batch was applied")
	}
	if l, _ := f.Lease("db"); l.Holder != "db/0" {
		t.Errorf("db's lease %+v, want db/0's", l)
	}
	if l, _ := f.Lease("web"); l.Holder != "web/0" {
		t.Errorf("web's lease %+v, want web/0's", l)
	}

	index++
	if res := f.Apply(index, lease.EncodeBatch(nil)); !errors.Is(res.Err, lease.ErrInvalidCommand) || res.Batch != nil {
		t.Errorf("empty batch: %+v", res)
	}

	old := lease.NewFSM()
	old.Apply(1, mustEncode(t, lease.AdvanceTime{New: base}))
	old.Apply(2, mustEncode(t, lease.SetEffectiveVersion{Old: 1, New: lease.BatchProtocol - 1}))
	old.Apply(3, mustEncode(t, registrations([]string{"db/0"})[0]))
	before := old.State()
	res = old.Apply(4, lease.EncodeBatch([][]byte{mustEncode(t, claim("db/0", dur))}))
	if !errors.Is(res.Err, lease.ErrNeedsProtocol) || res.Batch != nil {
		t.Errorf("batch at protocol %d: %+v", lease.BatchProtocol-1, res)
	}
	if diff := cmp.Diff(before, old.State(), ignoreScratch); diff != "" {
		t.Errorf("refused batch changed the state:\n%s", diff)
	}
}

// TestBatchEncoding: EncodeBatch of encoded commands is the envelope
// Encode gives the Batch itself, and it decodes back to the commands.
func TestBatchEncoding(t *testing.T) {
	ops := []lease.Op{claim("db/0", dur), lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle"}}
	whole := mustEncode(t, lease.Batch{Ops: ops})
	if glued := lease.EncodeBatch([][]byte{mustEncode(t, ops[0]), mustEncode(t, ops[1])}); !bytes.Equal(whole, glued) {
		t.Fatalf("EncodeBatch %s, Encode %s", glued, whole)
	}
	op, err := lease.Decode(whole)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lease.Batch{Ops: ops}, op); diff != "" {
		t.Fatalf("decoded batch differs:\n%s", diff)
	}
	if need, _ := lease.RequiredProtocol(op); need != lease.BatchProtocol {
		t.Fatalf("a batch needs protocol %d, want %d", need, lease.BatchProtocol)
	}
}

// TestEncodeIsTheEnvelope: Encode writes what json.Marshal of the
// Command envelope writes, for every command type.
func TestEncodeIsTheEnvelope(t *testing.T) {
	ops := []lease.Op{claim("db/0", dur), lease.SetUnitStatus{Unit: "db/0", Kind: "agent", Status: "idle", Message: "<&>"},
		lease.PinLease{App: "db", Entity: "e", Until: ptr(base)}, lease.RegisterUnit{Name: "db/0", TokenHash: "h"},
		lease.Batch{Ops: []lease.Op{claim("db/0", dur), extend("db/1", dur)}}, lease.AdvanceTime{New: base}}
	for _, op := range ops {
		payload, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(lease.Command{Version: lease.CommandVersion, Type: op.Type(), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustEncode(t, op); !bytes.Equal(got, want) {
			t.Errorf("%s: Encode\n%s\nwant\n%s", op.Type(), got, want)
		}
	}
}
