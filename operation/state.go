package operation

import (
	"fmt"
	"time"

	"github.com/uniter-dev/uniter/hooks"
)

// Kind names the kind of an operation.
type Kind string

// Operation kinds. Every operation that runs charm code is a RunHook; the
// hook's kind says what committing it means.
const (
	RunHook Kind = "run-hook"
)

// Step is how far the current operation got. The executor writes each step
// to the state file before it moves on, so a restart knows where it stopped.
type Step string

// Steps of an operation, in the order the executor writes them.
const (
	// Queued: chosen but not started. On restart it runs from the start.
	Queued Step = "queued"
	// Pending: the hook may have started. On restart it is a failed hook.
	Pending Step = "pending"
	// Done: the hook ran to success but was not committed. On restart it
	// is committed, never run again.
	Done Step = "done"
)

// HookInfo describes a hook run and the remote state it runs against.
// Committing the hook records these versions, so a restart never re-runs a
// hook for a change it has already seen.
type HookInfo struct {
	Kind                  hooks.Kind `yaml:"kind"`
	Term                  uint64     `yaml:"term,omitempty"`
	ConfigVersion         uint64     `yaml:"config-version,omitempty"`
	LeaderSettingsVersion uint64     `yaml:"leader-settings-version,omitempty"`
	// Relation is set for a relation hook (operation/relations.go).
	Relation RelationHookInfo `yaml:",inline"`
}

// Op is the operation in progress, as recorded in the state file.
type Op struct {
	Kind Kind     `yaml:"kind"`
	Step Step     `yaml:"step"`
	Hook HookInfo `yaml:"hook"`
	// Operation is the action or exec of a RunAction or RunExec op.
	Operation *OperationInfo `yaml:"operation,omitempty"`
}

// HookError records a failed hook: the unit is in error state until the
// hook is retried successfully or resolved.
type HookError struct {
	Hook hooks.Kind `yaml:"hook"`
	// Info is the failed hook as it ran, so a retry runs it against the
	// same versions even after another hook (leader-deposed) ran between.
	Info     HookInfo  `yaml:"info,omitempty"`
	Message  string    `yaml:"message"`
	Since    time.Time `yaml:"since"`
	Attempts int       `yaml:"attempts"`
}

// State is the unit's committed local state: what the executor is doing and
// what the charm has been told so far. It is the content of
// state/uniter.yaml.
type State struct {
	// Version is the state file's schema version.
	Version int `yaml:"version"`
	// Op is the operation in progress, if any.
	Op *Op `yaml:"op,omitempty"`
	// Installed, Started, Stopped and Removed record the lifecycle hooks
	// that have been committed.
	Installed bool `yaml:"installed"`
	Started   bool `yaml:"started"`
	Stopped   bool `yaml:"stopped,omitempty"`
	Removed   bool `yaml:"removed,omitempty"`
	// Leader is true after leader-elected for LeaderTerm was committed, and
	// false again after leader-deposed.
	Leader     bool   `yaml:"leader"`
	LeaderTerm uint64 `yaml:"leader-term"`
	// ConfigVersion and LeaderSettingsVersion are the versions the last
	// committed config-changed and leader-settings-changed hooks saw.
	ConfigVersion         uint64 `yaml:"config-version"`
	LeaderSettingsVersion uint64 `yaml:"leader-settings-version"`
	// ResolvedSeen is the last resolved request acted on, so a request is
	// applied once even across restarts.
	ResolvedSeen uint64 `yaml:"resolved-seen,omitempty"`
	// Error is set while the unit is in error state.
	Error *HookError `yaml:"error,omitempty"`
	// Relations records, per relation id, what the charm has been told of
	// the relation (operation/relations.go).
	Relations map[int]RelationState `yaml:"relations,omitempty"`
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := s
	if s.Op != nil {
		op := *s.Op
		if op.Operation != nil {
			o := *op.Operation
			op.Operation = &o
		}
		c.Op = &op
	}
	if s.Error != nil {
		e := *s.Error
		c.Error = &e
	}
	c.Relations = cloneRelations(s.Relations)
	return c
}

// Validate checks that s is internally consistent.
func (s State) Validate() error {
	if s.Op != nil {
		switch s.Op.Step {
		case Queued, Pending, Done:
		default:
			return fmt.Errorf("unknown operation step %q", s.Op.Step)
		}
		switch s.Op.Kind {
		case RunHook:
			if err := s.Op.Hook.Kind.Validate(); err != nil {
				return err
			}
		case RunAction, RunExec:
			if err := s.Op.validateOperation(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown operation kind %q", s.Op.Kind)
		}
	}
	if s.Error != nil {
		if err := s.Error.Hook.Validate(); err != nil {
			return fmt.Errorf("error state: %w", err)
		}
	}
	return validateRelations(s.Relations)
}
