package operation

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/internal/osutil"
	uniterversion "github.com/uniter-dev/uniter/internal/version"
)

// CurrentVersion is the state file schema this binary writes.
//
// Version 2 adds `written-by`: the release of the uniter that last wrote
// the file, so that an older uniter that refuses it can say which release
// to run instead. Version 1 files migrate by adding it when they are
// rewritten (their writer is not known).
//
// Version 3 adds relations: `relations` (per relation id, what the charm
// has been told: its members and the databag versions the last hooks ran
// for) and the relation fields of a hook (`relation-id`, `remote-unit`,
// `remote-app`, `departing-unit`, `peer`, `relation-version`). Version 2
// files migrate as they are: a unit that knew of no relations has none.
const CurrentVersion = 3

// writtenBySince is the first schema version with `written-by`,
// relationsSince the first with `relations`.
const (
	writtenBySince = 2
	relationsSince = 3
)

// ErrNoState means the state file does not exist yet: a new unit.
var ErrNoState = errors.New("operation: no state file")

// ErrFutureVersion means the state file was written by a newer uniter.
var ErrFutureVersion = errors.New("operation: state file is from a newer uniter")

// Migration turns the raw YAML document of one schema version into the next.
// Migrations are keyed by the version they migrate from.
type Migration func(doc map[string]any) error

// migrations holds the forward migrations, keyed by the version they read.
var migrations = map[int]Migration{
	// 1 → 2: nothing to move; `written-by` is filled in by the write that
	// completes the migration.
	1: func(map[string]any) error { return nil },
	// 2 → 3: no relations recorded yet; nothing to move.
	2: func(map[string]any) error { return nil },
}

// file is the on-disk document: the state plus the file's own metadata.
type file struct {
	State     `yaml:",inline"`
	WrittenBy string `yaml:"written-by,omitempty"`
}

// StateFile reads and writes state/uniter.yaml. Writes are atomic: a reader
// or a crash sees the old file or the new one, never a mix.
type StateFile struct {
	path       string
	migrations map[int]Migration
	current    int
}

// NewStateFile returns the state file at path.
func NewStateFile(path string) *StateFile {
	return &StateFile{path: path, migrations: migrations, current: CurrentVersion}
}

// Path returns the file's path.
func (f *StateFile) Path() string { return f.path }

// Read parses the state file strictly. A missing file is ErrNoState. A file
// that does not parse, holds unknown fields or is from a newer schema
// (ErrFutureVersion) is an error naming the file, and the file is left
// untouched. A file of an older schema is migrated on disk, so the agent
// carries on from the same step: its old content is kept in
// <path>.v<N>.bak, then the migrated state replaces it atomically.
// Migrated reports whether that happened.
func (f *StateFile) Read() (st State, migrated bool, err error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, ErrNoState
	}
	if err != nil {
		return State{}, false, fmt.Errorf("cannot read state file %s: %w", f.path, err)
	}
	st, from, err := f.parse(data)
	if err != nil {
		return State{}, false, fmt.Errorf("cannot read state file %s: %w", f.path, err)
	}
	if from == f.current {
		return st, false, nil
	}
	if err := f.keepOld(data, from); err != nil {
		return State{}, false, err
	}
	if err := f.Write(st); err != nil {
		return State{}, false, fmt.Errorf("cannot migrate state file %s from version %d: %w", f.path, from, err)
	}
	return st, true, nil
}

// BackupPath is where a migration from version from keeps the old file.
func (f *StateFile) BackupPath(from int) string { return fmt.Sprintf("%s.v%d.bak", f.path, from) }

// keepOld writes the pre-migration content beside the file, atomically.
func (f *StateFile) keepOld(data []byte, from int) error {
	if err := osutil.WriteFileAtomic(f.BackupPath(from), data, 0o600); err != nil {
		return fmt.Errorf("cannot keep a copy of state file %s before migrating it: %w", f.path, err)
	}
	return nil
}

// parse decodes data, migrating it in memory, and returns the state and
// the version the data was of.
func (f *StateFile) parse(data []byte) (State, int, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return State{}, 0, fmt.Errorf("corrupt: %w", err)
	}
	if doc == nil {
		return State{}, 0, errors.New("corrupt: empty document")
	}
	version, ok := doc["version"].(int)
	if !ok {
		return State{}, 0, errors.New("corrupt: missing or non-integer version")
	}
	if version > f.current {
		by := ""
		if w, ok := doc["written-by"].(string); ok && w != "" {
			by = " written by uniter " + w + ","
		}
		return State{}, 0, fmt.Errorf("%w: version %d,%s this uniter (%s) understands up to %d; upgrade uniter",
			ErrFutureVersion, version, by, uniterversion.Version, f.current)
	}
	if _, ok := doc["relations"]; ok && version < relationsSince {
		return State{}, 0, fmt.Errorf("corrupt: field relations not known in version %d", version)
	}
	if version < f.current {
		var err error
		if data, err = f.migrate(doc, version); err != nil {
			return State{}, 0, err
		}
	}
	var fl file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fl); err != nil {
		return State{}, 0, fmt.Errorf("corrupt: %w", err)
	}
	if fl.WrittenBy != "" && version < writtenBySince {
		return State{}, 0, fmt.Errorf("corrupt: field written-by not known in version %d", version)
	}
	if err := fl.State.Validate(); err != nil {
		return State{}, 0, fmt.Errorf("corrupt: %w", err)
	}
	return fl.State, version, nil
}

func (f *StateFile) migrate(doc map[string]any, from int) ([]byte, error) {
	for v := from; v < f.current; v++ {
		m, ok := f.migrations[v]
		if !ok {
			return nil, fmt.Errorf("cannot migrate from version %d: no migration known", v)
		}
		if err := m(doc); err != nil {
			return nil, fmt.Errorf("cannot migrate from version %d: %w", v, err)
		}
		doc["version"] = v + 1
	}
	return yaml.Marshal(doc)
}

// Write replaces the state file atomically: it writes a temporary file in
// the same directory, fsyncs it, renames it over the old one and fsyncs the
// directory. On any error the previous file is left as it was.
func (f *StateFile) Write(st State) error {
	st.Version = f.current
	if err := st.Validate(); err != nil {
		return fmt.Errorf("cannot write state file %s: invalid state: %w", f.path, err)
	}
	fl := file{State: st}
	if f.current >= writtenBySince {
		fl.WrittenBy = uniterversion.Version
	}
	data, err := yaml.Marshal(fl)
	if err != nil {
		return fmt.Errorf("cannot write state file %s: %w", f.path, err)
	}
	if err := osutil.WriteFileAtomic(f.path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write state file %s: %w", f.path, err)
	}
	return nil
}
