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
		Relations: map[int]operation.RelationState{
			0: {Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: map[string]uint64{"app/1": 12, "app/2": 0},
				ChangedPending: "app/2", AppVersion: 9},
			4: {Endpoint: "db", RemoteApp: "pg"},
		},
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

// TestStateFileRoundTripRelationHook: a relation hook in progress and in
// error state keeps its relation, remote unit and versions.
func TestStateFileRoundTripRelationHook(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uniter.yaml")
	f := operation.NewStateFile(path)
	info := operation.HookInfo{Kind: "cluster-relation-departed", Term: 3, Relation: operation.RelationHookInfo{
		RelationID: 0, RemoteUnit: "app/1", RemoteApp: "app", DepartingUnit: "app/0", Peer: true, Version: 41}}
	want := operation.State{
		Version: operation.CurrentVersion, Installed: true, Started: true,
		Op:        &operation.Op{Kind: operation.RunHook, Step: operation.Pending, Hook: info},
		Error:     &operation.HookError{Hook: info.Kind, Info: info, Message: "hook failed", Since: time.Unix(5, 0).UTC(), Attempts: 1},
		Relations: map[int]operation.RelationState{0: {Endpoint: "cluster", RemoteApp: "app", Peer: true, Members: map[string]uint64{"app/1": 40}}},
	}
	if err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	data, _ := os.ReadFile(path)
	for _, field := range []string{"remote-unit: app/1", "departing-unit: app/0", "relation-version: 41", "changed-pending", "members:"} {
		if want := field != "changed-pending"; strings.Contains(string(data), field) != want {
			t.Errorf("file has %q: %v, want %v:\n%s", field, !want, want, data)
		}
	}
}

// stateV2 is a unit's state file as the uniter before relations wrote it.
const stateV2 = `version: 2
installed: true
started: true
leader: false
leader-term: 4
config-version: 1
leader-settings-version: 3
written-by: 0.9.0
`

// TestStateFileMigratesVersion2: 2 → 3 keeps every field, records no
// relations (the agent runs -created for the relations it finds), and a
// version-2 file that already speaks of relations is corrupt.
func TestStateFileMigratesVersion2(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "uniter.yaml")
	if err := os.WriteFile(path, []byte(stateV2), 0o600); err != nil {
		t.Fatal(err)
	}
	f := operation.NewStateFile(path)
	got, migrated, err := f.Read()
	if err != nil || !migrated {
		t.Fatalf("Read = %v, migrated %v", err, migrated)
	}
	want := operation.State{Version: operation.CurrentVersion, Installed: true, Started: true, LeaderTerm: 4,
		ConfigVersion: 1, LeaderSettingsVersion: 3}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("migrated state (-want +got):\n%s", d)
	}
	if kept, _ := os.ReadFile(f.BackupPath(2)); string(kept) != stateV2 {
		t.Fatalf("backup = %q", kept)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), "version: 3\n") {
		t.Fatalf("migrated file:\n%s", data)
	}
	bad := stateV2 + "relations: {0: {endpoint: cluster, remote-app: app}}\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Read(); err == nil || !strings.Contains(err.Error(), "corrupt: field relations not known in version 2") {
		t.Fatalf("Read of a version-2 file with relations = %v", err)
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
		{name: "bad relation endpoint", content: "version: 3\nrelations: {1: {endpoint: Bad, remote-app: x}}\n", want: `invalid endpoint "Bad"`},
		{name: "changed pending for a stranger", content: "version: 3\nrelations: {1: {endpoint: db, remote-app: x, changed-pending: x/1}}\n",
			want: `changed pending for "x/1"`},
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
	if kept, _ := os.ReadFile(path + ".v0.bak"); string(kept) != old {
		t.Fatalf("old file kept as %q", kept)
	}
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := operation.NewStateFileForTest(path, 1, nil)
	if _, _, err := missing.Read(); err == nil || !strings.Contains(err.Error(), "no migration") {
		t.Fatalf("Read without a migration = %v, want a clear error", err)
	}
	if after, _ := os.ReadFile(path); string(after) != old {
		t.Fatalf("a failed migration changed the file to %q", after)
	}
}

// stateV1 is a state file as the uniter before schema 2 wrote it: config-
// changed has run to success but is not committed yet, in error state from
// an earlier failure of it.
const stateV1 = `version: 1
op:
    kind: run-hook
    step: done
    hook:
        kind: config-changed
        config-version: 3
installed: true
started: false
leader: true
leader-term: 2
config-version: 2
leader-settings-version: 1
error:
    hook: config-changed
    info:
        kind: config-changed
        config-version: 3
    message: 'hook failed: "config-changed"'
    since: 2026-01-02T03:04:05Z
    attempts: 2
`

// TestStateFileMigratesVersion1: the real 1 → 2 migration keeps every
// field (so the agent carries on from the same step), keeps the old file
// as uniter.yaml.v1.bak, and rewrites the file at version 2 with
// written-by; a second read finds nothing to migrate.
func TestStateFileMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "uniter.yaml")
	if err := os.WriteFile(path, []byte(stateV1), 0o600); err != nil {
		t.Fatal(err)
	}
	f := operation.NewStateFile(path)
	got, migrated, err := f.Read()
	if err != nil || !migrated {
		t.Fatalf("Read = %v, migrated %v", err, migrated)
	}
	info := operation.HookInfo{Kind: hooks.ConfigChanged, ConfigVersion: 3}
	want := operation.State{
		Version: operation.CurrentVersion, Op: &operation.Op{Kind: operation.RunHook, Step: operation.Done, Hook: info},
		Installed: true, Leader: true, LeaderTerm: 2, ConfigVersion: 2, LeaderSettingsVersion: 1,
		Error: &operation.HookError{Hook: hooks.ConfigChanged, Info: info, Message: `hook failed: "config-changed"`,
			Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Attempts: 2},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("migrated state (-want +got):\n%s", d)
	}
	if kept, err := os.ReadFile(f.BackupPath(1)); err != nil || string(kept) != stateV1 {
		t.Fatalf("backup %s = %q, %v; want the old file", f.BackupPath(1), kept, err)
	}
	if fi, err := os.Stat(f.BackupPath(1)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v, %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "version: 3\n") || !strings.Contains(string(data), "\nwritten-by: ") {
		t.Fatalf("migrated file:\n%s", data)
	}
	again, migrated, err := f.Read()
	if d := cmp.Diff(want, again); err != nil || migrated || d != "" {
		t.Fatalf("second Read = %v, migrated %v, diff (-want +got):\n%s", err, migrated, d)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want the file and its backup", len(entries))
	}
}

// TestStateFileRefusesFutureWithWriter: a file from a newer schema is
// refused untouched, naming the release that wrote it; nothing is backed
// up.
func TestStateFileRefusesFutureWithWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "uniter.yaml")
	future := "version: 4\nwritten-by: 9.1.0\ninstalled: true\nlifecycle: started\n"
	if err := os.WriteFile(path, []byte(future), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := operation.NewStateFile(path).Read()
	if !errors.Is(err, operation.ErrFutureVersion) || !strings.Contains(err.Error(), "written by uniter 9.1.0") ||
		!strings.Contains(err.Error(), "upgrade uniter") {
		t.Fatalf("Read = %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != future {
		t.Fatalf("file changed to %q", after)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(entries))
	}
}

// TestStateFileVersion1IsStrict: a version-1 file is checked as strictly
// as before, and one that fails is neither migrated nor backed up.
func TestStateFileVersion1IsStrict(t *testing.T) {
	for _, content := range []string{
		"version: 1\ninstalled: true\nwritten-by: 0.1.0\n",
		"version: 1\ninstalled: maybe\n",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "uniter.yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := operation.NewStateFile(path).Read(); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("Read of %q = %v, want corrupt", content, err)
		}
		if after, _ := os.ReadFile(path); string(after) != content {
			t.Fatalf("file changed to %q", after)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("directory holds %d entries, want only the file", len(entries))
		}
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
