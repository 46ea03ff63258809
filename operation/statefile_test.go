package operation_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/operation"
)

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uniter.yaml")
	f := operation.NewStateFile(path)
	if _, _, err := f.Read(); !errors.Is(err, operation.ErrNoState) {
		t.Fatalf("Read of a missing file = %v, want ErrNoState", err)
	}
	want := operation.State{
		Version:   operation.CurrentVersion,
		Op:        &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 3}},
		Installed: true, Leader: true, LeaderTerm: 7, ConfigVersion: 2, LeaderSettingsVersion: 4,
		Error: &operation.HookError{Hook: hooks.ConfigChanged, Message: "hook failed", Since: time.Unix(100, 0).UTC(), Attempts: 2},
	}
	if err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	got, migrated, err := f.Read()
	if err != nil || migrated {
		t.Fatalf("Read = %v, migrated %v", err, migrated)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode = %v (%v), want 0600", fi.Mode(), err)
	}
}

func TestStateFileRefusesBadFilesUntouched(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
		future              bool
	}{
		{name: "garbage", content: "{{{not yaml", want: "corrupt"},
		{name: "truncated", content: "version: 1\nop:\n  kind: run-hook\n  step: pen", want: "unknown operation step"},
		{name: "unknown field", content: "version: 1\ninstalled: true\nsurprise: 1\n", want: "field surprise not found"},
		{name: "no version", content: "installed: true\n", want: "missing or non-integer version"},
		{name: "empty", content: "", want: "empty document"},
		{name: "future", content: "version: 99\ninstalled: true\nshiny-new-field: x\n", want: "upgrade uniter", future: true},
		{name: "bad hook kind", content: "version: 1\nop: {kind: run-hook, step: queued, hook: {kind: explode}}\n", want: "unknown hook kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "uniter.yaml")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := operation.NewStateFile(path).Read()
			if err == nil {
				t.Fatal("Read accepted a bad state file")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name the file and say %q", err, tc.want)
			}
			if errors.Is(err, operation.ErrFutureVersion) != tc.future {
				t.Fatalf("errors.Is(ErrFutureVersion) = %v, want %v", !tc.future, tc.future)
			}
			after, _ := os.ReadFile(path)
			if string(after) != tc.content {
				t.Fatalf("file changed by Read: %q", after)
			}
		})
	}
}

func TestStateFileMigratesOlderVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uniter.yaml")
	// A version-0 file, from before "leader-term" was recorded as such.
	old := "version: 0\ninstalled: true\nleader: true\nterm: 5\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	f := operation.NewStateFileForTest(path, 1, map[int]operation.Migration{
		0: func(doc map[string]any) error {
			doc["leader-term"] = doc["term"]
			delete(doc, "term")
			return nil
		},
	})
	got, migrated, err := f.Read()
	if err != nil {
		t.Fatal(err)
	}
	if !migrated || !got.Installed || !got.Leader || got.LeaderTerm != 5 {
		t.Fatalf("migrated state = %+v (migrated %v)", got, migrated)
	}
	missing := operation.NewStateFileForTest(path, 1, nil)
	if _, _, err := missing.Read(); err == nil || !strings.Contains(err.Error(), "no migration") {
		t.Fatalf("Read without a migration = %v, want a clear error", err)
	}
}

func TestWriteFailureKeepsPreviousState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "uniter.yaml")
	f := operation.NewStateFile(path)
	if err := f.Write(operation.State{Installed: true}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A directory where the temp file should go makes the write fail.
	bad := operation.NewStateFile(filepath.Join(dir, "missing-dir", "uniter.yaml"))
	if err := bad.Write(operation.State{Started: true}); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if err := f.Write(operation.State{Op: &operation.Op{Kind: "bogus"}}); err == nil {
		t.Fatal("wrote an invalid state")
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatalf("previous state changed:\n%s\nto\n%s", before, after)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after failed writes, want only the state file", len(entries))
	}
}
