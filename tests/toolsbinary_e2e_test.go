package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestToolsBinary checks what a real agent's tools/ symlinks point at: the
// small uniter-hooktools beside the uniter binary the agent runs from, or,
// when there is none, that uniter binary itself (which acts as every tool
// too) with one warning in the agent log. Either way a hook's `is-leader`
// answers through the link.
func TestToolsBinary(t *testing.T) {
	c := startCluster(t, 1)
	alone := filepath.Join(t.TempDir(), "uniter")
	copyExecutable(t, uniterBin, alone)
	tests := []struct {
		name, unit, bin string
		target          string // of every tools/ symlink
		warn            bool   // the agent logs that uniter-hooktools is missing
	}{
		{"beside uniter-hooktools", "small/0", uniterBin, filepath.Join(filepath.Dir(uniterBin), "uniter-hooktools"), false},
		{"uniter alone", "fallback/0", alone, alone, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := c.addUnit(tt.unit, "journal", nil)
			if err := os.WriteFile(u.path("charm", "ask-leader"), []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			u.p = startBin(t, tt.bin, u.path("agent.out"), nil, "agent", "--agent-dir", u.dir)
			testutil.WaitUntil(t, 60*time.Second, tt.unit+"'s leader-elected to see is-leader True", func() bool {
				for _, a := range readAnswers(t, u.path("charm", "journal.log.leader")) {
					if a.Hook == "leader-elected" && a.Leader {
						return true
					}
				}
				return false
			})
			for _, name := range hooktools.ToolNames() {
				if got, err := os.Readlink(u.path("tools", name)); err != nil || got != tt.target {
					t.Errorf("tools/%s -> %q, %v; want %q", name, got, err, tt.target)
				}
			}
			entries, _ := agentLog(t, u)
			warnings := 0
			for _, e := range entries {
				if e.str("missing") == hooktools.ClientPath(tt.bin) && e.str("level") == "warn" {
					warnings++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.warn]; warnings != want {
				t.Errorf("%d warnings naming the missing %s, want %d", warnings, hooktools.ClientPath(tt.bin), want)
			}
		})
	}
}

// copyExecutable copies the file src to dst, mode 0755.
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
