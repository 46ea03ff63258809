package operation

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// CurrentVersion is the state file schema this binary writes.
const CurrentVersion = 1

// ErrNoState means the state file does not exist yet: a new unit.
var ErrNoState = errors.New("operation: no state file")

// ErrFutureVersion means the state file was written by a newer uniter.
var ErrFutureVersion = errors.New("operation: state file is from a newer uniter")

// Migration turns the raw YAML document of one schema version into the next.
// Migrations are keyed by the version they migrate from.
type Migration func(doc map[string]any) error

// migrations holds the forward migrations, keyed by the version they read.
var migrations = map[int]Migration{}

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
// that does not parse, holds unknown fields or is from a newer schema is an
// error naming the file; the file itself is never modified by Read.
// Migrated reports whether the file was of an older version.
func (f *StateFile) Read() (st State, migrated bool, err error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, ErrNoState
	}
	if err != nil {
		return State{}, false, fmt.Errorf("cannot read state file %s: %w", f.path, err)
	}
	st, migrated, err = f.parse(data)
	if err != nil {
		return State{}, false, fmt.Errorf("cannot read state file %s: %w", f.path, err)
	}
	return st, migrated, nil
}

func (f *StateFile) parse(data []byte) (State, bool, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return State{}, false, fmt.Errorf("corrupt: %w", err)
	}
	if doc == nil {
		return State{}, false, errors.New("corrupt: empty document")
	}
	version, ok := doc["version"].(int)
	if !ok {
		return State{}, false, errors.New("corrupt: missing or non-integer version")
	}
	if version > f.current {
		return State{}, false, fmt.Errorf("%w: version %d, this uniter understands up to %d; upgrade uniter", ErrFutureVersion, version, f.current)
	}
	migrated := version < f.current
	if migrated {
		var err error
		if data, err = f.migrate(doc, version); err != nil {
			return State{}, false, err
		}
	}
	var st State
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&st); err != nil {
		return State{}, false, fmt.Errorf("corrupt: %w", err)
	}
	if err := st.Validate(); err != nil {
		return State{}, false, fmt.Errorf("corrupt: %w", err)
	}
	return st, migrated, nil
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
	data, err := yaml.Marshal(st)
	if err != nil {
		return fmt.Errorf("cannot write state file %s: %w", f.path, err)
	}
	if err := WriteFileAtomic(f.path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write state file %s: %w", f.path, err)
	}
	return nil
}

// WriteFileAtomic writes data to path with the given mode so that a crash
// leaves either the old content or the new, never a torn file.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
