package lease_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
)

func tcp(from, to int) lease.PortRange {
	return lease.PortRange{Protocol: lease.PortTCP, From: from, To: to}
}

func forEndpoint(ep string, p lease.PortRange) lease.PortRange {
	p.Endpoint = ep
	return p
}

var icmp = lease.PortRange{Protocol: lease.PortICMP}

// toProtocol5 raises a harness's effective version to 5 (no members: any
// raise is allowed).
var toProtocol5 = lease.SetEffectiveVersion{Old: 1, New: 5}

func wantPorts(unit string, want ...lease.PortRange) func(*testing.T, *lease.State, lease.Result) {
	return func(t *testing.T, s *lease.State, _ lease.Result) {
		t.Helper()
		if diff := cmp.Diff(want, s.Units[unit].OpenedPorts); diff != "" {
			t.Errorf("%s opened ports (-want +got):\n%s", unit, diff)
		}
	}
}

func manyPorts(n int) []lease.PortRange {
	var out []lease.PortRange
	for i := range n {
		out = append(out, tcp(1000+i, 1000+i))
	}
	return out
}

func TestSetUnitPorts(t *testing.T) {
	udp := lease.PortRange{Protocol: lease.PortUDP, From: 53, To: 53}
	runCases(t, []tcase{
		{name: "open, kept sorted by protocol then ports", setup: []lease.Op{toProtocol5},
			op:    lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{udp, tcp(8000, 8010), icmp, tcp(80, 80)}},
			check: wantPorts("db/0", icmp, tcp(80, 80), tcp(8000, 8010), udp)},
		{name: "repeat open is a no-op, index kept", setup: []lease.Op{toProtocol5, lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}}},
			op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80), forEndpoint("db", tcp(80, 80))}},
			check: func(t *testing.T, s *lease.State, res lease.Result) {
				wantPorts("db/0", tcp(80, 80))(t, s, res)
				if u := s.Units["db/0"]; u.ModifyIndex == res.Index {
					t.Error("a no-op moved the unit's modify index")
				}
			}},
		{name: "close then open", setup: []lease.Op{toProtocol5, lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80), tcp(443, 443)}}},
			op:    lease.SetUnitPorts{Unit: "db/0", Close: []lease.PortRange{tcp(80, 80), tcp(22, 22)}, Open: []lease.PortRange{forEndpoint("db", tcp(80, 80))}},
			check: wantPorts("db/0", forEndpoint("db", tcp(80, 80)), tcp(443, 443))},
		{name: "open for all endpoints replaces per-endpoint entries",
			setup: []lease.Op{toProtocol5, lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{forEndpoint("a", tcp(80, 80)), forEndpoint("b", tcp(80, 80))}}},
			op:    lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}},
			check: wantPorts("db/0", tcp(80, 80))},
		{name: "close everything", setup: []lease.Op{toProtocol5, lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}}},
			op: lease.SetUnitPorts{Unit: "db/0", Close: []lease.PortRange{tcp(80, 80)}}, check: wantPorts("db/0")},
		{name: "the limit exactly", setup: []lease.Op{toProtocol5},
			op: lease.SetUnitPorts{Unit: "db/0", Open: manyPorts(lease.MaxUnitPortRanges)},
			check: func(t *testing.T, s *lease.State, _ lease.Result) {
				if n := len(s.Units["db/0"].OpenedPorts); n != lease.MaxUnitPortRanges {
					t.Errorf("%d ranges open", n)
				}
			}},
		{name: "over the limit", setup: []lease.Op{toProtocol5},
			op: lease.SetUnitPorts{Unit: "db/0", Open: manyPorts(lease.MaxUnitPortRanges + 1)}, wantErr: lease.ErrTooLarge},
		{name: "below protocol 5", op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}}, wantErr: lease.ErrNeedsProtocol},
		{name: "at protocol 4", setup: []lease.Op{lease.SetEffectiveVersion{Old: 1, New: 4}},
			op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}}, wantErr: lease.ErrNeedsProtocol},
		{name: "unknown unit", setup: []lease.Op{toProtocol5}, op: lease.SetUnitPorts{Unit: "db/9", Open: []lease.PortRange{tcp(80, 80)}}, wantErr: lease.ErrUnknownUnit},
		{name: "reversed range", setup: []lease.Op{toProtocol5}, op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(20, 10)}}, wantErr: lease.ErrInvalidCommand},
		{name: "port out of bounds", setup: []lease.Op{toProtocol5}, op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(1, 70000)}}, wantErr: lease.ErrInvalidCommand},
		{name: "unknown protocol", setup: []lease.Op{toProtocol5},
			op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{{Protocol: "sctp", From: 1, To: 1}}}, wantErr: lease.ErrInvalidCommand},
		{name: "icmp with ports", setup: []lease.Op{toProtocol5},
			op: lease.SetUnitPorts{Unit: "db/0", Close: []lease.PortRange{{Protocol: lease.PortICMP, From: 8, To: 8}}}, wantErr: lease.ErrInvalidCommand},
		{name: "bad endpoint name", setup: []lease.Op{toProtocol5},
			op: lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{forEndpoint("Bad!", tcp(1, 1))}}, wantErr: lease.ErrInvalidCommand},
	})
}

func TestSetUnitPortsEncodes(t *testing.T) {
	op := lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{forEndpoint("db", tcp(80, 81)), icmp}, Close: []lease.PortRange{tcp(22, 22)}}
	data, err := lease.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"type":"set-unit-ports","payload":{"unit":"db/0","open":[{"endpoint":"db","protocol":"tcp","from":80,"to":81},{"protocol":"icmp"}],"close":[{"protocol":"tcp","from":22,"to":22}]}}`
	if string(data) != want {
		t.Errorf("encoded\n%s\nwant\n%s", data, want)
	}
	back, err := lease.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lease.Op(op), back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if need, _ := lease.RequiredProtocol(op); need != 5 {
		t.Errorf("set-unit-ports needs protocol %d, want 5", need)
	}
}

func TestPortRangeString(t *testing.T) {
	for _, tc := range []struct {
		p    lease.PortRange
		want string
	}{
		{tcp(80, 80), "80/tcp"}, {tcp(8000, 8010), "8000-8010/tcp"}, {icmp, "icmp"},
		{lease.PortRange{Protocol: lease.PortUDP, From: 53, To: 53, Endpoint: "dns"}, "53/udp"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v prints %q, want %q", tc.p, got, tc.want)
		}
	}
}

// populatePorts is populateRelations, then protocol 5 and ports on two
// units.
func (h *fsmHarness) populatePorts() {
	h.populateRelations()
	h.must(lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 5, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"})
	h.must(lease.SetEffectiveVersion{Old: 4, New: 5})
	h.must(lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(5432, 5432), forEndpoint("server", tcp(9000, 9010)), icmp}})
	h.must(lease.SetUnitPorts{Unit: "web/0", Open: []lease.PortRange{tcp(80, 80)}})
}

func TestSnapshotFormat4HoldsPorts(t *testing.T) {
	h := newFSMHarness(t)
	h.populatePorts()
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":4,"state":{`)) ||
		!bytes.Contains(sink.Bytes(), []byte(`"opened_ports":[{"protocol":"icmp"},{"protocol":"tcp","from":5432,"to":5432},{"endpoint":"server","protocol":"tcp","from":9000,"to":9010}]`)) {
		t.Fatalf("snapshot at protocol 5: %s", sink.Bytes())
	}
	next := roundTrip(t, h, sink)
	for _, op := range []lease.Op{
		lease.SetUnitPorts{Unit: "db/0", Close: []lease.PortRange{icmp}, Open: []lease.PortRange{tcp(9000, 9010)}},
		lease.SetUnitPorts{Unit: "web/0", Open: manyPorts(lease.MaxUnitPortRanges)},
		lease.DeregisterUnit{Name: "db/0"},
	} {
		if diff := cmp.Diff(h.apply(op), next.apply(op), cmp.Comparer(sameErr)); diff != "" {
			t.Errorf("%s results differ:\n%s", op.Type(), diff)
		}
	}
	if diff := cmp.Diff(h.fsm.State(), next.fsm.State(), ignoreScratch); diff != "" {
		t.Errorf("replicas diverged after restore (-original +restored):\n%s", diff)
	}
}

// TestSnapshotFormat3BeforeProtocol5: at protocol 4 the snapshot is still
// format 3, without a trace of ports, exactly as a protocol-4 binary
// writes and reads it; it restores with no ports, and ports work once the
// cluster runs protocol 5.
func TestSnapshotFormat3BeforeProtocol5(t *testing.T) {
	h := newFSMHarness(t)
	h.populateRelations()
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":3,"state":{`)) || bytes.Contains(sink.Bytes(), []byte("opened_ports")) {
		t.Fatalf("snapshot at protocol 4: %.80s", sink.Bytes())
	}
	next := roundTrip(t, h, sink)
	if res := next.apply(lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}}); !errors.Is(res.Err, lease.ErrNeedsProtocol) {
		t.Fatalf("set-unit-ports at protocol 4: %v", res.Err)
	}
	next.must(lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 5, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"})
	next.must(lease.SetEffectiveVersion{Old: 4, New: 5})
	next.must(lease.SetUnitPorts{Unit: "db/0", Open: []lease.PortRange{tcp(80, 80)}})
	if got := snapshot(t, next.fsm); !bytes.HasPrefix(got.Bytes(), []byte(`{"format":4,`)) {
		t.Errorf("snapshot after the raise to 5: %.40s", got.Bytes())
	}
}

func unitJSON(state map[string]any, name string) map[string]any {
	return state["units"].(map[string]any)[name].(map[string]any)
}

func TestRestoreRefusesBadPortSnapshots(t *testing.T) {
	h := newFSMHarness(t)
	h.populatePorts()
	good := snapshot(t, h.fsm).Bytes()
	for _, tc := range []struct {
		name string
		edit func(file, state map[string]any)
		want string
	}{
		{"format 3 at protocol 5", func(f, _ map[string]any) { f["format"] = 3 }, "format 3 cannot hold the state of protocol 5"},
		{"ports in format 3", func(f, s map[string]any) { f["format"], s["effective_version"] = 3, 4 }, "format 3 cannot hold opened ports"},
		{"ports below protocol 5", func(_, s map[string]any) { s["effective_version"] = 4 }, "opened ports before protocol 5"},
		{"unsorted", func(_, s map[string]any) {
			p := unitJSON(s, "db/0")["opened_ports"].([]any)
			p[0], p[1] = p[1], p[0]
		}, "not sorted and unique"},
		{"bad range", func(_, s map[string]any) {
			unitJSON(s, "web/0")["opened_ports"] = []any{map[string]any{"protocol": "tcp", "from": 9, "to": 1}}
		}, "invalid port range 9-1/tcp"},
		{"also open for all endpoints", func(_, s map[string]any) {
			unitJSON(s, "web/0")["opened_ports"] = []any{map[string]any{"protocol": "tcp", "from": 80, "to": 80},
				map[string]any{"endpoint": "db", "protocol": "tcp", "from": 80, "to": 80}}
		}, "also open for all endpoints"},
		{"over the limit", func(_, s map[string]any) {
			var many []any
			for i := range lease.MaxUnitPortRanges + 1 {
				many = append(many, map[string]any{"protocol": "tcp", "from": 1000 + i, "to": 1000 + i})
			}
			unitJSON(s, "web/0")["opened_ports"] = many
		}, fmt.Sprintf("the limit is %d", lease.MaxUnitPortRanges)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := lease.NewFSM().Restore(strings.NewReader(mutateSnapshot(t, good, tc.edit)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
