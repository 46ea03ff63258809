package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
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

// randomLease is a lease of TestDecodeLeaseResponseMatchesEncodingJSON.
func randomLease(r *rand.Rand) Lease {
	holders := []string{"", "db/0", "web-app/12", `a"b`, "<x>&", "é/1", "tab\there"}
	times := []time.Time{{}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("X", 3600))}
	l := Lease{Holder: holders[r.IntN(len(holders))], Term: r.Uint64() >> r.IntN(64),
		Start: times[r.IntN(len(times))], Expiry: times[r.IntN(len(times))].Add(time.Duration(r.IntN(1e9))),
		Duration: time.Duration(r.Int64N(int64(48 * time.Hour))), StepDown: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		l.Pins = []Pin{{Entity: "op", Reason: "upgrade", Since: times[r.IntN(len(times))]}}
	}
	return l
}

// TestDecodeLeaseResponseMatchesEncodingJSON holds the client's decoder of
// lease answers to encoding/json on what the server writes, and checks
// that the common answer takes the fast path (else the fast path could
// break unnoticed behind its fallback).
func TestDecodeLeaseResponseMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for i := range 5000 {
		l := randomLease(r)
		data, err := (LeaseResponse{Lease: l}).AppendJSON(nil)
		if err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
		if i%2 == 0 {
			data = append(data, '\n') // as the server sends it
		}
		var want, got LeaseResponse
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("lease %d: encoding/json: %v", i, err)
		}
		if err := got.DecodeJSON(data); err != nil {
			t.Fatalf("lease %d: DecodeJSON(%s): %v", i, data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("lease %d: %s\n got %#v\nwant %#v", i, data, got, want)
		}
		_, ok := parseLeaseResponse(data)
		// encoding/json escapes " \ < > & and control characters, and
		// writes non-ASCII as it is: the fast path takes neither.
		plain := len(l.Pins) == 0 && !strings.ContainsAny(l.Holder, "\"\\<>&\té")
		if ok != plain {
			t.Fatalf("lease %d: fast path %v for %s, want %v", i, ok, data, plain)
		}
		if ok {
			fast++
		}
	}
	if fast < 1000 { // about a third: no pins, and a holder of three of seven
		t.Errorf("only %d of 5000 answers took the fast path", fast)
	}
}

// TestDecodeLeaseResponseRefusals: what the fast path does not take is
// encoding/json's to judge, with encoding/json's errors.
func TestDecodeLeaseResponseRefusals(t *testing.T) {
	good := `{"lease":{"holder":"db/0","term":3,"start":"2026-01-02T03:04:05Z","duration":"30s","expiry":"2026-01-02T03:04:35Z","pins":[],"step_down":false}}`
	if _, ok := parseLeaseResponse([]byte(good)); !ok {
		t.Fatalf("the fast path refused %s", good)
	}
	for _, tc := range []struct{ name, data, wantErr string }{
		{"negative duration", strings.Replace(good, `"30s"`, `"-1s"`, 1), `lease duration: negative duration "-1s"`},
		{"bad time", strings.Replace(good, `2026-01-02T03:04:05Z`, `2026-13-02T03:04:05Z`, 1), `parsing time`},
		{"term with a leading zero", strings.Replace(good, `"term":3`, `"term":03`, 1), `invalid character '3'`},
		{"term too large", strings.Replace(good, `"term":3`, `"term":18446744073709551616`, 1), `cannot unmarshal number 18446744073709551616`},
		{"trailing bytes", good + "\n x", `invalid character 'x' after top-level value`},
		{"truncated", good[:len(good)-1], `unexpected end of JSON input`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := parseLeaseResponse([]byte(tc.data)); ok {
				t.Fatalf("the fast path took %s", tc.data)
			}
			var got LeaseResponse
			err := got.DecodeJSON([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	// Shapes encoding/json takes and the fast path leaves to it.
	for _, data := range []string{
		strings.Replace(good, `{"lease":{`, `{ "lease":{`, 1),
		strings.Replace(good, `"db/0"`, `"db\/0"`, 1),
		strings.Replace(good, `"step_down":false}`, `"step_down":false,"extra":1}`, 1),
	} {
		var got, want LeaseResponse
		if _, ok := parseLeaseResponse([]byte(data)); ok {
			t.Errorf("the fast path took %s", data)
		}
		if err := got.DecodeJSON([]byte(data)); err != nil || json.Unmarshal([]byte(data), &want) != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, %v; want %#v", data, got, err, want)
		}
	}
}

// FuzzDecodeLeaseResponse: whatever the fast path accepts, encoding/json
// accepts too and reads the same.
func FuzzDecodeLeaseResponse(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		data, err := (LeaseResponse{Lease: randomLease(r)}).AppendJSON(nil)
		if err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, ok := parseLeaseResponse(data)
		if !ok {
			return
		}
		var want LeaseResponse
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("the fast path took %q, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(LeaseResponse{Lease: l}, want) {
			t.Fatalf("%q:\n fast %#v\n json %#v", data, l, want.Lease)
		}
	})
}
