package etcd_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/bench/etcd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestParseTrials reads etcdload's lines back: every field, ops/s and the
// latencies in ms; a broken line or one without its elapsed time is an
// error that names the line.
func TestParseTrials(t *testing.T) {
	out := `{"mode":"cas","trial":1,"clients":64,"ops":8000,"errs":2,"elapsed_s":2,"first_err":"deadline","latency_us":[1500,250],"client":"go.etcd.io/etcd/client/v3 v3.7.3"}

{"mode":"cas","trial":2,"clients":64,"ops":9000,"errs":0,"elapsed_s":2,"latency_us":[],"client":"go.etcd.io/etcd/client/v3 v3.7.3"}
`
	got, err := etcd.ParseTrials(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []etcd.Trial{
		{Mode: "cas", Trial: 1, Clients: 64, Ops: 8000, Errs: 2, ElapsedS: 2, FirstErr: "deadline",
			LatencyUS: []int64{1500, 250}, Client: "go.etcd.io/etcd/client/v3 v3.7.3"},
		{Mode: "cas", Trial: 2, Clients: 64, Ops: 9000, ElapsedS: 2, LatencyUS: []int64{}, Client: "go.etcd.io/etcd/client/v3 v3.7.3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("trials (-want +got):\n%s", diff)
	}
	if ops := got[0].OpsPerSec(); ops != 4000 {
		t.Errorf("ops/s = %v, want 4000", ops)
	}
	if diff := cmp.Diff([]float64{1.5, 0.25}, got[0].LatencyMS()); diff != "" {
		t.Errorf("latency in ms (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ out, want string }{
		{`{"mode":"cas","ops":1,"elapsed_s":1}` + "\nnot json\n", "line 2"},
		{`{"mode":"cas","ops":1}`, "line 1: no elapsed time"},
	} {
		if _, err := etcd.ParseTrials(strings.NewReader(tc.out)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTrials(%q) = %v, want an error with %q", tc.out, err, tc.want)
		}
	}
}
