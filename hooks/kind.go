package hooks

import "fmt"

// Kind names a hook.
type Kind string

// The hooks uniter runs.
const (
	Install               Kind = "install"
	LeaderElected         Kind = "leader-elected"
	LeaderDeposed         Kind = "leader-deposed"
	LeaderSettingsChanged Kind = "leader-settings-changed"
	ConfigChanged         Kind = "config-changed"
	Start                 Kind = "start"
	UpdateStatus          Kind = "update-status"
	Stop                  Kind = "stop"
	Remove                Kind = "remove"
)

var allKinds = []Kind{
	Install, LeaderElected, LeaderDeposed, LeaderSettingsChanged,
	ConfigChanged, Start, UpdateStatus, Stop, Remove,
}

// AllKinds returns every hook kind uniter runs, in a fixed order. The
// slice is a copy: callers may modify it.
func AllKinds() []Kind {
	return append([]Kind(nil), allKinds...)
}

// Validate returns an error if k is not one of the kinds uniter runs: one
// of AllKinds, or a relation hook of a valid endpoint (RelationHook).
func (k Kind) Validate() error {
	for _, known := range allKinds {
		if k == known {
			return nil
		}
	}
	if k.IsRelation() {
		return nil
	}
	return fmt.Errorf("unknown hook kind %q", string(k))
}

// String returns the hook's name, e.g. "config-changed".
func (k Kind) String() string { return string(k) }
