package hooks_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/hooks"
)

// copyCharm copies testcharms/<name> (symlinks and modes included) into a
// fresh charm directory.
func copyCharm(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "testcharms", name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		switch {
		case err != nil:
			return err
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("cannot copy charm %s: %v", name, err)
	}
	return dst
}

var journalLineRE = regexp.MustCompile(`^([a-z-]+) ([a-z0-9-]+/[0-9]+) ([0-9]+) ([0-9]+) (start|end|fail)$`)

type journalLine struct {
	Hook, Unit, Event string
	Pid               int
	Ns                uint64
}

// readJournal parses the journal at path, failing on a malformed line.
func readJournal(t *testing.T, path string) []journalLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []journalLine
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := journalLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("malformed journal line %q", line)
		}
		pid, _ := strconv.Atoi(m[3])
		ns, _ := strconv.ParseUint(m[4], 10, 64)
		out = append(out, journalLine{Hook: m[1], Unit: m[2], Pid: pid, Ns: ns, Event: m[5]})
	}
	return out
}

// checkRun checks that lines are one run of hook on unit: start then end
// (or fail), same pid, time not going backwards.
func checkRun(t *testing.T, lines []journalLine, hook hooks.Kind, unit, end string) {
	t.Helper()
	if len(lines) != 2 {
		t.Fatalf("journal has %d lines for %s, want 2: %+v", len(lines), hook, lines)
	}
	start, stop := lines[0], lines[1]
	if start.Hook != string(hook) || stop.Hook != string(hook) || start.Unit != unit || stop.Unit != unit ||
		start.Event != "start" || stop.Event != end || start.Pid != stop.Pid || stop.Ns < start.Ns {
		t.Fatalf("journal = %+v, want %s %s start, then %s, same pid", lines, hook, unit, end)
	}
}

func TestJournalCharmRunsEveryKind(t *testing.T) {
	dir := copyCharm(t, "journal")
	r, _ := newRunner(t, hooks.Config{}, nil)
	for i, kind := range hooks.AllKinds() {
		if err := r.Run(context.Background(), params(kind, dir)); err != nil {
			t.Fatalf("Run(%s): %v", kind, err)
		}
		lines := readJournal(t, filepath.Join(dir, "journal.log"))
		checkRun(t, lines[2*i:], kind, "app/0", "end")
		if i > 0 && lines[2*i].Ns < lines[2*i-1].Ns {
			t.Fatalf("monotonic time went backwards: %+v", lines)
		}
	}
}

func TestJournalCharmFailKnob(t *testing.T) {
	dir := copyCharm(t, "journal")
	writeFile(t, dir, "fail-config-changed", "", 0o644)
	logs := &logBuffer{}
	r, _ := newRunner(t, hooks.Config{}, logs)
	err := r.Run(context.Background(), params(hooks.ConfigChanged, dir))
	var exitErr *hooks.ExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 1 {
		t.Fatalf("Run() = %v, want exit code 1", err)
	}
	checkRun(t, readJournal(t, filepath.Join(dir, "journal.log")), hooks.ConfigChanged, "app/0", "fail")
	if recs := logs.records(t, "hook output"); len(recs) != 1 || recs[0]["stream"] != "stderr" {
		t.Errorf("output records = %v, want one stderr line", recs)
	}
	// Other hooks are unaffected.
	if err := r.Run(context.Background(), params(hooks.Start, dir)); err != nil {
		t.Fatalf("Run(start): %v", err)
	}
}

func TestJournalCharmSharedJournal(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared.log")
	r, _ := newRunner(t, hooks.Config{}, nil)
	for _, unit := range []string{"journal/0", "journal/1"} {
		dir := copyCharm(t, "journal")
		writeFile(t, dir, "journal.path", shared+"\n", 0o644)
		p := params(hooks.Install, dir)
		p.Unit = unit
		if err := r.Run(context.Background(), p); err != nil {
			t.Fatalf("Run(%s): %v", unit, err)
		}
		if readFile(t, dir, "journal.log") != "" {
			t.Fatalf("%s wrote its own journal despite journal.path", unit)
		}
	}
	lines := readJournal(t, shared)
	if len(lines) != 4 {
		t.Fatalf("shared journal = %+v, want 4 lines", lines)
	}
	checkRun(t, lines[:2], hooks.Install, "journal/0", "end")
	checkRun(t, lines[2:], hooks.Install, "journal/1", "end")
}

func TestJournalCharmBlockKnob(t *testing.T) {
	dir := copyCharm(t, "journal")
	writeFile(t, dir, "block-leader-elected", "", 0o644)
	journal := filepath.Join(dir, "journal.log")
	r, _ := newRunner(t, hooks.Config{}, nil)
	errc := runAsync(t, context.Background(), r, params(hooks.LeaderElected, dir))
	waitFor(t, "the start line", func() bool { return len(readJournal(t, journal)) == 1 })
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v while blocked", err)
	default:
	}
	if err := os.Remove(filepath.Join(dir, "block-leader-elected")); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkRun(t, readJournal(t, journal), hooks.LeaderElected, "app/0", "end")
}

func TestJournalCharmHangKnob(t *testing.T) {
	dir := copyCharm(t, "journal")
	writeFile(t, dir, "hang-stop", "", 0o644)
	journal := filepath.Join(dir, "journal.log")
	r, clk := newRunner(t, hooks.Config{Timeout: time.Minute}, nil)
	errc := runAsync(t, context.Background(), r, params(hooks.Stop, dir))
	waitFor(t, "the start line", func() bool { return len(readJournal(t, journal)) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := clk.WaitForWaiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := waitErr(t, errc); !errors.Is(err, hooks.ErrTimeout) {
		t.Fatalf("Run() = %v, want a timeout", err)
	}
	lines := readJournal(t, journal)
	if len(lines) != 1 || lines[0].Event != "start" {
		t.Fatalf("journal = %+v, want only the start line", lines)
	}
	waitGone(t, lines[0].Pid)
}
