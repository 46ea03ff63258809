// Package hooktoolstest holds a hand-written fake of hooktools.Backend for
// tests: it records every call, answers is-leader from a script, fences
// leader-set like the controller does and keeps statuses in memory.
package hooktoolstest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/uniter-dev/uniter/hooktools"
)

// Call is one recorded Backend call.
type Call struct {
	// Method is the Backend method's name, e.g. "SetStatus".
	Method string
	// Args are its arguments after ctx.
	Args []any
}

// Backend is a fake hooktools.Backend, safe for concurrent use. The zero
// value is a non-leader with no statuses; set fields before use or call
// the setters.
type Backend struct {
	mu       sync.Mutex
	leader   bool
	script   []bool
	errs     map[string]error
	calls    []Call
	settings map[string]string
	unit     hooktools.StatusInfo
	app      hooktools.StatusInfo
	version  string
}

var _ hooktools.Backend = (*Backend)(nil)

// NewBackend returns a fake whose leadership is leader.
func NewBackend(leader bool) *Backend {
	return &Backend{leader: leader, settings: map[string]string{}}
}

// SetLeader changes the leadership IsLeader reports once the script is
// used up, and that SetLeaderSettings is fenced by.
func (b *Backend) SetLeader(leader bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leader = leader
}

// ScriptIsLeader queues answers for the next IsLeader calls, one per call,
// before falling back to the leadership set by SetLeader.
func (b *Backend) ScriptIsLeader(answers ...bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.script = append(b.script, answers...)
}

// FailWith makes every later call of method return err (nil clears it).
func (b *Backend) FailWith(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.errs == nil {
		b.errs = map[string]error{}
	}
	b.errs[method] = err
}

// SetStatuses sets what GetStatus returns for the unit and the
// application.
func (b *Backend) SetStatuses(unit, app hooktools.StatusInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unit, b.app = unit, app
}

// Calls returns the calls made so far.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// Settings returns the leader settings written so far.
func (b *Backend) Settings() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.settings)
}

// Version returns the last application version set.
func (b *Backend) Version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.version
}

// record logs a call and returns the error set by FailWith, if any. The
// caller holds b.mu.
func (b *Backend) record(method string, args ...any) error {
	b.calls = append(b.calls, Call{Method: method, Args: args})
	return b.errs[method]
}

// IsLeader implements hooktools.Backend.
func (b *Backend) IsLeader(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("IsLeader"); err != nil {
		return false, err
	}
	if len(b.script) > 0 {
		ok := b.script[0]
		b.script = b.script[1:]
		return ok, nil
	}
	return b.leader, ctx.Err()
}

// SetLeaderSettings implements hooktools.Backend; it is fenced by the
// leadership set with SetLeader, like the controller's term check.
func (b *Backend) SetLeaderSettings(_ context.Context, changes map[string]string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("SetLeaderSettings", maps.Clone(changes)); err != nil {
		return err
	}
	if !b.leader {
		return fmt.Errorf("cannot write settings: %w", hooktools.ErrNotLeader)
	}
	if b.settings == nil {
		b.settings = map[string]string{}
	}
	for k, v := range changes {
		if v == "" {
			delete(b.settings, k)
		} else {
			b.settings[k] = v
		}
	}
	return nil
}

// SetStatus implements hooktools.Backend.
func (b *Backend) SetStatus(_ context.Context, s hooktools.Status) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("SetStatus", s); err != nil {
		return err
	}
	target := &b.unit
	if s.Application {
		target = &b.app
	}
	target.Status, target.Message = s.Status, s.Message
	return nil
}

// GetStatus implements hooktools.Backend.
func (b *Backend) GetStatus(_ context.Context, application bool) (hooktools.StatusInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("GetStatus", application); err != nil {
		return hooktools.StatusInfo{}, err
	}
	if application {
		return b.app, nil
	}
	return b.unit, nil
}

// SetApplicationVersion implements hooktools.Backend.
func (b *Backend) SetApplicationVersion(_ context.Context, version string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("SetApplicationVersion", version); err != nil {
		return err
	}
	b.version = version
	return nil
}
