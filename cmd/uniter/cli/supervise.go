package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/logging"
)

// supervisor runs one `uniter agent` process per unit for `uniter up`,
// restarts those that die, and prints what their logs say. Its run loop
// owns the set of supervised units; add hands it more.
type supervisor struct {
	out   io.Writer
	dirs  map[string]string // unit → agent dir; run's own once it runs
	adds  chan unitDir
	clock clock.Clock
	mu    sync.Mutex // serialises output lines
}

// unitDir is a unit to supervise and its agent directory.
type unitDir struct{ unit, dir string }

func newSupervisor(out io.Writer, dirs map[string]string) *supervisor {
	return &supervisor{out: out, dirs: dirs, adds: make(chan unitDir), clock: clock.Real}
}

func (s *supervisor) printf(unit, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, "%s  %-14s %s\n", s.clock.Now().Format(time.TimeOnly), unit, fmt.Sprintf(format, args...))
}

// add asks run to supervise unit too (nothing if it does already); it
// returns once run has taken it, or ctx ended.
func (s *supervisor) add(ctx context.Context, unit, dir string) {
	select {
	case s.adds <- unitDir{unit, dir}:
	case <-ctx.Done():
	}
}

// run supervises every unit, and those add brings, until ctx ends, then
// stops them all. watch, if set, runs beside it for as long (it may call
// add).
func (s *supervisor) run(ctx context.Context, watch func(context.Context)) error {
	units := make([]string, 0, len(s.dirs))
	for u := range s.dirs {
		units = append(units, u)
	}
	sort.Strings(units)
	var wg sync.WaitGroup
	tailCtx, stopTails := context.WithCancel(context.Background())
	start := func(u, dir string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, u, dir)
		}()
		go s.tail(tailCtx, u, agent.LogPath(dir))
	}
	for _, u := range units {
		start(u, s.dirs[u])
	}
	if watch != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(ctx)
		}()
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case a := <-s.adds:
			if _, ok := s.dirs[a.unit]; !ok {
				s.dirs[a.unit] = a.dir
				s.printf(a.unit, "deployed: starting its agent")
				start(a.unit, a.dir)
			}
		}
	}
	wg.Wait()
	stopTails()
	return nil
}

// agentOutMaxBytes bounds each unit's agent.out under `uniter up`; one
// rotated copy (agent.out.1) is kept.
const agentOutMaxBytes = 4 << 20

// keep runs unit's agent, restarting it with backoff when it dies.
func (s *supervisor) keep(ctx context.Context, unit, dir string) {
	backoff := time.Second
	for ctx.Err() == nil {
		started := s.clock.Now()
		err := s.runAgent(ctx, unit, dir)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.printf(unit, "agent exited: the unit was removed")
			return
		}
		if s.clock.Now().Sub(started) > time.Minute {
			backoff = time.Second
		}
		s.printf(unit, "agent died unexpectedly (%v); restarting in %v", err, backoff)
		select {
		case <-s.clock.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runAgent runs one agent process until it exits, or stops it gracefully
// (SIGTERM, then SIGKILL after a deadline) when ctx ends.
func (s *supervisor) runAgent(ctx context.Context, unit, dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The agent's own output is what its log already holds plus anything
	// it prints before its log is open (or when it panics): rotated, so
	// that a hook printing megabytes cannot fill the disk twice over.
	out, err := logging.OpenRotating(filepath.Join(dir, "agent.out"), agentOutMaxBytes, 1)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(self, "agent", "--agent-dir", dir)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: the terminal's Ctrl-C reaches only `up`,
	// which then stops the agents in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start agent: %w", err)
	}
	s.printf(unit, "agent started (pid %d)", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		s.printf(unit, "agent stopped")
	case <-s.clock.After(agent.DefaultStopTimeout + 10*time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		s.printf(unit, "agent killed: it did not stop in time")
	}
	return nil
}

// logLine is the part of an agent's JSON log line `up` reports on.
type logLine struct {
	Level    string  `json:"level"`
	Message  string  `json:"message"`
	Hook     string  `json:"hook"`
	Term     uint64  `json:"term"`
	Duration float64 `json:"duration"`
	ExitCode *int    `json:"exit_code"`
	Reason   string  `json:"reason"`
	Error    string  `json:"error"`
	Flap     string  `json:"flap"`
}

// tail follows an agent's log file and prints its hook and leadership
// events until ctx ends.
func (s *supervisor) tail(ctx context.Context, unit, path string) {
	var offset int64
	var partial []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(100 * time.Millisecond):
		}
		data, next, err := readFrom(path, offset)
		if err != nil {
			continue
		}
		if next < offset { // rotated
			partial = nil
		}
		offset = next
		partial = append(partial, data...)
		for {
			i := indexByte(partial, '\n')
			if i < 0 {
				break
			}
			s.report(unit, partial[:i])
			partial = partial[i+1:]
		}
	}
}

// readFrom reads path from offset (from 0 if the file shrank).
func readFrom(path string, offset int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, offset, err
	}
	if fi.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	data, err := io.ReadAll(bufio.NewReader(io.LimitReader(f, 1<<20)))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, offset, err
	}
	return data, offset + int64(len(data)), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (s *supervisor) report(unit string, line []byte) {
	var l logLine
	if json.Unmarshal(line, &l) != nil {
		return
	}
	switch l.Message {
	case "ran hook":
		s.printf(unit, "ran %s hook (%.0f ms)", l.Hook, l.Duration)
	case "hook failed":
		code := "?"
		if l.ExitCode != nil {
			code = fmt.Sprint(*l.ExitCode)
		}
		s.printf(unit, "%s hook FAILED (exit %s): unit in error state", l.Hook, code)
	case "skipped hook (missing)":
		s.printf(unit, "no %s hook: skipped", l.Hook)
	case "leadership gained":
		s.printf(unit, "★ is the leader now (term %d)", l.Term)
	case "leadership lost":
		s.printf(unit, "lost leadership of term %d (%s)", l.Term, l.Reason)
	case "leadership released":
		s.printf(unit, "released leadership of term %d", l.Term)
	case "leadership flapped":
		s.printf(unit, "leadership flapped (%s)", l.Flap)
	case "hook resolved without retry":
		s.printf(unit, "%s hook resolved without retry", l.Hook)
	case "agent stopped":
		if l.Error != "" {
			s.printf(unit, "agent stopped: %s", l.Error)
		}
	}
}
