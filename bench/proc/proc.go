// Package proc reads a process's CPU time, memory and thread count from
// /proc, for the footprint figures of the benchmarks (nothing is added to
// the measured programs).
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// TicksPerSecond is USER_HZ, the unit of the CPU times in /proc/<pid>/stat:
// 100 on every Linux architecture the kernel exposes to user space.
const TicksPerSecond = 100

// Sample is one reading of a process.
type Sample struct {
	At time.Time
	// CPUTicks is user + system CPU time, in 1/TicksPerSecond s.
	CPUTicks uint64
	// RSSKB and HWMKB are the resident set size and its peak (VmRSS,
	// VmHWM), in kB.
	RSSKB, HWMKB uint64
	Threads      int
	FDs          int
}

// Read samples process pid now.
func Read(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("cannot read process %d: %w", pid, err)
	}
	if s.CPUTicks, err = ParseStat(string(stat)); err != nil {
		return Sample{}, fmt.Errorf("cannot read process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("cannot read process %d: %w", pid, err)
	}
	if s.RSSKB, s.HWMKB, s.Threads, err = ParseStatus(string(status)); err != nil {
		return Sample{}, fmt.Errorf("cannot read process %d: %w", pid, err)
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(fds)
	}
	return s, nil
}

// ParseStat returns utime + stime from the text of /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no command name")
	}
	// After ") ": field 3 (state) is index 0, so utime (14) and stime (15)
	// are indexes 11 and 12.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat: %d fields after the command name", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed stat: %w", err)
	}
	return utime + stime, nil
}

// ParseStatus returns VmRSS and VmHWM (kB) and Threads from the text of
// /proc/<pid>/status.
func ParseStatus(status string) (rssKB, hwmKB uint64, threads int, err error) {
	seen := 0
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		var perr error
		switch k {
		case "VmRSS":
			rssKB, perr = strconv.ParseUint(v, 10, 64)
		case "VmHWM":
			hwmKB, perr = strconv.ParseUint(v, 10, 64)
		case "Threads":
			threads, perr = strconv.Atoi(v)
		default:
			continue
		}
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("malformed status line %q: %w", strings.TrimSpace(line), perr)
		}
		seen++
	}
	if seen < 3 {
		return 0, 0, 0, errors.New("malformed status: want VmRSS, VmHWM and Threads")
	}
	return rssKB, hwmKB, threads, nil
}

// CPUPercent is the CPU used between two samples of one process, in
// percent of one core.
func CPUPercent(a, b Sample) float64 {
	wall := b.At.Sub(a.At).Seconds()
	if wall <= 0 || b.CPUTicks < a.CPUTicks {
		return 0
	}
	return float64(b.CPUTicks-a.CPUTicks) / TicksPerSecond / wall * 100
}

// MB converts kB to MiB.
func MB(kb uint64) float64 { return float64(kb) / 1024 }
