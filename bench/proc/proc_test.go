package proc_test

import (
	"os"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/bench/proc"
)

func TestParseStat(t *testing.T) {
	// The command name holds a space and a ')'.
	stat := "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 1000000 2000 18446744073709551615"
	got, err := proc.ParseStat(stat)
	if err != nil || got != 300 {
		t.Errorf("ParseStat = %d, %v; want 300", got, err)
	}
	if _, err := proc.ParseStat("4242 (x) S 1 2"); err == nil {
		t.Error("a short stat parsed")
	}
	if _, err := proc.ParseStat("no name"); err == nil {
		t.Error("a stat without a command name parsed")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tuniter\nVmHWM:\t   20480 kB\nVmRSS:\t   12288 kB\nThreads:\t9\nSigQ:\t0/1\n"
	rss, hwm, threads, err := proc.ParseStatus(status)
	if err != nil || rss != 12288 || hwm != 20480 || threads != 9 {
		t.Errorf("ParseStatus = %d, %d, %d, %v", rss, hwm, threads, err)
	}
	if _, _, _, err := proc.ParseStatus("Name:\tx\nThreads:\t1\n"); err == nil {
		t.Error("a status without VmRSS parsed")
	}
	if _, _, _, err := proc.ParseStatus("VmRSS:\tmany kB\nVmHWM:\t1 kB\nThreads:\t1\n"); err == nil {
		t.Error("a bad VmRSS parsed")
	}
}

func TestCPUPercent(t *testing.T) {
	at := time.Unix(1000, 0)
	a := proc.Sample{At: at, CPUTicks: 100}
	b := proc.Sample{At: at.Add(10 * time.Second), CPUTicks: 150}
	if got := proc.CPUPercent(a, b); got != 5 {
		t.Errorf("CPUPercent = %v, want 5", got)
	}
	if got := proc.CPUPercent(b, a); got != 0 {
		t.Errorf("CPUPercent backwards = %v, want 0", got)
	}
	u := proc.Summarize([]proc.Sample{{At: at, CPUTicks: 0, RSSKB: 1024}, {At: at.Add(2 * time.Second), CPUTicks: 20, RSSKB: 2048, HWMKB: 4096}})
	if u.CPUPercent != 10 || u.PeakMB != 4 || len(u.RSSMB) != 2 || u.RSSMB[1] != 2 {
		t.Errorf("Summarize = %+v", u)
	}
}

// TestReadSelf reads this very process: the parser agrees with the kernel.
func TestReadSelf(t *testing.T) {
	s, err := proc.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB == 0 || s.Threads < 1 || s.FDs < 1 {
		t.Errorf("Read(self) = %+v", s)
	}
}
