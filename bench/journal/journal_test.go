package journal_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/bench/journal"
)

func TestParseAndRuns(t *testing.T) {
	data := []byte(`install app/0 10 100 start
leader-elected app/1 11 150 start
install app/0 10 180 end
leader-elected app/1 11 200 fail
leader-deposed app/0 12 300 start
start app/2 13 4`) // a line still being written
	entries, err := journal.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("got %d entries, want 5 (the partial line left out)", len(entries))
	}
	want := []journal.Run{
		{Hook: "install", Unit: "app/0", PID: 10, Start: 100, End: 180},
		{Hook: "leader-elected", Unit: "app/1", PID: 11, Start: 150, End: 200, Failed: true},
		{Hook: "leader-deposed", Unit: "app/0", PID: 12, Start: 300},
	}
	runs := journal.Runs(entries)
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("Runs (-want +got):\n%s", diff)
	}
	if !journal.Running(runs) || journal.Running(runs[:2]) {
		t.Error("Running is wrong")
	}
	if runs[0].Duration() != 80 {
		t.Errorf("Duration = %v", runs[0].Duration())
	}
	got, ok := journal.First(runs, func(r journal.Run) bool { return r.Unit == "app/1" })
	if !ok || got.PID != 11 {
		t.Errorf("First = %+v, %v", got, ok)
	}
	if n := journal.Count(runs, func(r journal.Run) bool { return r.End != 0 }); n != 2 {
		t.Errorf("Count = %d", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"install app/0 x 100 start\n", "install app/0 1 100 begin\n", "install app/0 1 start\n"} {
		if _, err := journal.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestNowIsMonotonic(t *testing.T) {
	a := journal.Now()
	b := journal.Now()
	if a <= 0 || b < a {
		t.Errorf("Now went %d then %d", a, b)
	}
}
