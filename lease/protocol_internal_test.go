package lease

import "testing"

func TestRaiseTarget(t *testing.T) {
	m := func(lo, hi uint64) Member { return Member{ProtoMin: lo, ProtoMax: hi} }
	for _, tc := range []struct {
		name    string
		current uint64
		members map[string]Member
		voters  []string
		want    uint64
		ok      bool
	}{
		{"no members", 1, nil, nil, 1, false},
		{"all speak 2", 1, map[string]Member{"a": m(1, 2), "b": m(1, 2)}, []string{"a", "b"}, 2, true},
		{"the oldest decides", 1, map[string]Member{"a": m(1, 3), "b": m(1, 2), "c": m(1, 3)}, []string{"a", "b", "c"}, 2, true},
		{"one still speaks only 1", 1, map[string]Member{"a": m(1, 2), "b": m(1, 1)}, []string{"a", "b"}, 1, false},
		{"a voter has not announced", 1, map[string]Member{"a": m(1, 2)}, []string{"a", "b"}, 1, false},
		{"a recorded non-voter counts", 1, map[string]Member{"a": m(1, 2), "gone": m(1, 1)}, []string{"a"}, 1, false},
		{"never lowers", 2, map[string]Member{"a": m(1, 1)}, []string{"a"}, 2, false},
		{"already there", 2, map[string]Member{"a": m(1, 2)}, []string{"a"}, 2, false},
		{"no common version", 1, map[string]Member{"a": m(1, 2), "b": m(3, 3)}, []string{"a", "b"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RaiseTarget(tc.current, tc.members, tc.voters)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RaiseTarget = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSnapshotFormatNeverAheadOfVersion(t *testing.T) {
	for v := uint64(1); v <= MaxProtocol+1; v++ {
		if f := snapshotFormatFor(v); f < 1 || f > SnapshotFormat {
			t.Errorf("effective version %d writes snapshot format %d; this binary reads up to %d", v, f, SnapshotFormat)
		}
	}
	if snapshotFormatFor(1) != 1 {
		t.Error("protocol 1 must write snapshot format 1, which every protocol-1 binary reads")
	}
	if snapshotFormatFor(2) != 1 {
		t.Error("protocol 2 must write snapshot format 1, which every protocol-2 binary reads")
	}
	if snapshotFormatFor(3) != 2 {
		t.Error("protocol 3 (step-down hand-over) writes snapshot format 2")
	}
	if snapshotFormatFor(4) != 3 {
		t.Error("protocol 4 (relations) writes snapshot format 3")
	}
	if snapshotFormatFor(5) != 4 {
		t.Error("protocol 5 (opened ports) writes snapshot format 4")
	}
}
