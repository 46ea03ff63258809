package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// referenceLease is what MarshalJSON wrote through encoding/json before
// AppendJSON: AppendJSON must write the same bytes.
func referenceLease(l Lease) ([]byte, error) {
	pins := l.Pins
	if pins == nil {
		pins = []Pin{}
	}
	return json.Marshal(wireLease{
		Holder: l.Holder, Term: l.Term, Start: l.Start, Duration: l.Duration.String(),
		Expiry: l.Expiry, Pins: pins, StepDown: l.StepDown,
	})
}

func TestLeaseAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	holders := []string{"", "db/0", "web-app/12", `a"b`, "<x>&", "é/1", "tab\there", "\u2028"}
	times := []time.Time{{}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("X", 3600)),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.Local)}
	for i := range 5000 {
		l := Lease{Holder: holders[r.IntN(len(holders))], Term: r.Uint64() >> r.IntN(64),
			Start: times[r.IntN(len(times))], Expiry: times[r.IntN(len(times))].Add(time.Duration(r.IntN(1e9))),
			Duration: time.Duration(r.Int64N(int64(48 * time.Hour))), StepDown: r.IntN(2) == 0}
		switch r.IntN(3) {
		case 0:
			l.Pins = []Pin{}
		case 1:
			until := times[r.IntN(len(times))]
			l.Pins = []Pin{{Entity: "op", Reason: "<r>", Since: times[r.IntN(len(times))]}, {Entity: "x", Until: &until}}
		}
		want, wantErr := referenceLease(l)
		got, err := json.Marshal(LeaseResponse{Lease: l})
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("lease %d %+v: error %v, encoding/json %v", i, l, err, wantErr)
		}
		if err != nil {
			continue
		}
		if want = append(append([]byte(`{"lease":`), want...), '}'); !bytes.Equal(got, want) {
			t.Fatalf("lease %d:\n got %s\nwant %s", i, got, want)
		}
		if resp, err := (LeaseResponse{Lease: l}).AppendJSON(nil); err != nil || !bytes.Equal(resp, want) {
			t.Fatalf("lease %d: LeaseResponse.AppendJSON %s, %v", i, resp, err)
		}
		direct, err := l.AppendJSON([]byte("x"))
		if err != nil || !bytes.Equal(direct[1:], want[len(`{"lease":`):len(want)-1]) {
			t.Fatalf("lease %d: AppendJSON %s, %v", i, direct, err)
		}
	}
	bad := Lease{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := bad.AppendJSON(nil); err == nil {
		t.Error("a year past 9999 encoded")
	}
}
