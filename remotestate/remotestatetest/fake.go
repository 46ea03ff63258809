// Package remotestatetest provides a remote state source that tests set by
// hand, in process or through a file, in place of the controller.
package remotestatetest

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/remotestate"
)

// Fake is an in-process remote state source. Set never blocks: changes
// coalesce in a one-slot channel, as the real watcher's do.
type Fake struct {
	mu      sync.Mutex
	snap    remotestate.Snapshot
	changes chan struct{}
}

// New returns a fake holding snap, ready: a change is already signalled,
// as the real watcher signals its first complete snapshot.
func New(snap remotestate.Snapshot) *Fake {
	f := &Fake{snap: snap, changes: make(chan struct{}, 1)}
	f.changes <- struct{}{}
	return f
}

// Snapshot returns the current snapshot.
func (f *Fake) Snapshot() remotestate.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

// Changes signals after each Set.
func (f *Fake) Changes() <-chan struct{} { return f.changes }

// Set replaces the snapshot and signals a change.
func (f *Fake) Set(snap remotestate.Snapshot) {
	f.mu.Lock()
	f.snap = snap
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

// Update changes the snapshot with fn and signals a change.
func (f *Fake) Update(fn func(*remotestate.Snapshot)) {
	f.mu.Lock()
	fn(&f.snap)
	snap := f.snap
	f.mu.Unlock()
	f.Set(snap)
}

// File is the YAML form of a snapshot that an end-to-end test writes for an
// agent process built with a fake source.
type File struct {
	Life                  remotestate.Life `yaml:"life"`
	Leader                bool             `yaml:"leader"`
	Term                  uint64           `yaml:"term"`
	StepDown              bool             `yaml:"step-down"`
	Gained                uint64           `yaml:"gained"`
	LeaderSettingsVersion uint64           `yaml:"leader-settings-version"`
	ConfigVersion         uint64           `yaml:"config-version"`
	ResolvedID            uint64           `yaml:"resolved-id"`
	ResolvedNoRetry       bool             `yaml:"resolved-no-retry"`
	// NextOperation's fields are id, kind, action and status.
	NextOperation    remotestate.Operation `yaml:"next-operation"`
	QueuedOperations int                   `yaml:"queued-operations"`
	// Relations is a list of relations (remotestate.Relation's fields).
	Relations remotestate.Relations `yaml:"relations"`
}

// ReadFile reads a snapshot written by WriteFile.
func ReadFile(path string) (remotestate.Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return remotestate.Snapshot{}, fmt.Errorf("cannot read fake remote state: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return remotestate.Snapshot{}, fmt.Errorf("cannot read fake remote state %s: %w", path, err)
	}
	return remotestate.Snapshot(f), nil
}

// WriteFile writes snap to path atomically (write then rename).
func WriteFile(path string, snap remotestate.Snapshot) error {
	data, err := yaml.Marshal(File(snap))
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
