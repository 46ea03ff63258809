package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/operation"
)

func started(st operation.State) bool { return st.Started && st.Op == nil && st.Error == nil }

// TestCrashTable kills an agent with SIGKILL at every step boundary of the
// install hook and restarts it; the journal proves what ran.
func TestCrashTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		// crash brings the agent to the boundary and kills it.
		crash func(t *testing.T, u *unitDir)
		// installRuns is how many times install must have started and
		// ended in the journal once the unit is up.
		starts, ends int
	}{
		{name: "hook running", starts: 2, ends: 1, crash: func(t *testing.T, u *unitDir) {
			block := u.path("charm", "block-install")
			if err := os.WriteFile(block, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			u.start()
			testutil.WaitUntil(t, 30*time.Second, "install to start", func() bool { return count(u.journal(), "install", "start") == 1 })
			u.kill()
			// The hook is in its own process group and outlives the agent,
			// as it would; end it before the restart.
			if err := syscall.Kill(-u.journal()[0].PID, syscall.SIGKILL); err != nil {
				t.Fatalf("cannot kill the orphaned hook: %v", err)
			}
			if st := u.state(); st.Op == nil || st.Op.Step != operation.Pending {
				t.Fatalf("state at kill = %+v, want install pending", st)
			}
			os.Remove(block)
		}},
		{name: "hook done, not committed", starts: 1, ends: 1, crash: func(t *testing.T, u *unitDir) {
			u.start(envCrashAt + "=done:install")
			testutil.WaitUntil(t, 30*time.Second, "the done step", func() bool { return exists(u.path(crashMarker)) })
			u.kill()
			if st := u.state(); st.Op == nil || st.Op.Step != operation.Done || st.Installed {
				t.Fatalf("state at kill = %+v, want install done and not committed", st)
			}
		}},
		{name: "committed", starts: 1, ends: 1, crash: func(t *testing.T, u *unitDir) {
			u.start(envCrashAt + "=committed:install")
			testutil.WaitUntil(t, 30*time.Second, "the commit", func() bool { return exists(u.path(crashMarker)) })
			u.kill()
			if st := u.state(); st.Op != nil || !st.Installed {
				t.Fatalf("state at kill = %+v, want install committed", st)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			u := newUnit(t, root, "journal/0", "journal", filepath.Join(root, "machine-lock"))
			tc.crash(t, u)
			os.Remove(u.path(crashMarker))
			u.start()
			u.waitState("installed and started", started)
			j := u.journal()
			if got := count(j, "install", "start"); got != tc.starts {
				t.Errorf("install started %d times, want %d\n%v", got, tc.starts, j)
			}
			if got := count(j, "install", "end"); got != tc.ends {
				t.Errorf("install ended %d times, want %d\n%v", got, tc.ends, j)
			}
			for _, hook := range []string{"config-changed", "start"} {
				if count(j, hook, "start") != 1 || count(j, hook, "end") != 1 {
					t.Errorf("%s ran %d times, want once\n%v", hook, count(j, hook, "end"), j)
				}
			}
			// Order: every install before config-changed before start.
			assertOrder(t, j, "install", "config-changed", "start")
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// assertOrder checks that all entries of each hook come before the next's.
func assertOrder(t *testing.T, j []entry, hooks ...string) {
	t.Helper()
	last := map[string]int{}
	first := map[string]int{}
	for i, e := range j {
		if _, ok := first[e.Hook]; !ok {
			first[e.Hook] = i
		}
		last[e.Hook] = i
	}
	for i := 1; i < len(hooks); i++ {
		if last[hooks[i-1]] > first[hooks[i]] {
			t.Errorf("%s ran after %s began:\n%v", hooks[i-1], hooks[i], j)
		}
	}
}

// TestBadStateFileStopsAgent runs the real binary on a corrupt and on a
// future-versioned state file: exit 1, a message naming the file, and the
// file left byte for byte.
func TestBadStateFileStopsAgent(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"corrupt", "version: 1\nop: [unterminated\n", "corrupt"},
		{"future version", "version: 7\ninstalled: true\nfrom-the-future: yes\n", "upgrade uniter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			u := newUnit(t, root, "journal/0", "journal", filepath.Join(root, "machine-lock"))
			statePath := u.path("state", "uniter.yaml")
			os.MkdirAll(filepath.Dir(statePath), 0o700)
			if err := os.WriteFile(statePath, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			res := runUniter(t, "agent", "--agent-dir", u.dir)
			if res.code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, statePath) || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("stderr does not name %s and say %q:\n%s", statePath, tc.want, res.stderr)
			}
			if got, _ := os.ReadFile(statePath); string(got) != tc.content {
				t.Fatalf("state file changed to %q", got)
			}
			if len(u.journal()) != 0 {
				t.Fatal("a hook ran despite the bad state file")
			}
		})
	}
}
