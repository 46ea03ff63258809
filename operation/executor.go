package operation

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
)

// Operation is one step of work for the unit, run by the Executor in three
// phases. Each phase returns the state to record before the next phase
// starts (nil: nothing to record) and an error that stops the operation.
type Operation interface {
	// String describes the operation for logs and the machine lock log,
	// e.g. `run install hook`.
	String() string
	// Prepare checks the operation can run and returns the pending state.
	// It may return ErrSkip: then nothing runs and nothing is committed;
	// the state it returns with ErrSkip, if any, is written as is.
	Prepare(ctx context.Context, st State) (*State, error)
	// Execute does the work (runs the hook) and returns the done state, or
	// the error state when the work failed.
	Execute(ctx context.Context, st State) (*State, error)
	// Commit records the effect of the finished work. Commits are
	// idempotent: a restart may commit the same operation again.
	Commit(ctx context.Context, st State) (*State, error)
}

// ErrSkip, returned by Prepare, drops the operation without running it.
var ErrSkip = errors.New("operation: skipped")

// Locker serialises operations across every agent on a machine.
type Locker interface {
	// Acquire blocks until the lock is held or ctx ends. The returned
	// function releases it.
	Acquire(ctx context.Context, op string) (release func(), err error)
}

// Writer persists state. *StateFile is the production Writer.
type Writer interface {
	Write(st State) error
}

// ExecutorConfig holds the executor's dependencies.
type ExecutorConfig struct {
	// State is the state read at start (a fresh State for a new unit).
	State  State
	Writer Writer
	Locker Locker
	Logger zerolog.Logger
	// Observer, if set, is told how each operation Run ended.
	Observer Observer
}

// Executor runs operations one at a time, writing the state file between
// the phases so that a crash at any point is recovered correctly:
// Prepare → write pending → Execute → write done → Commit → write result.
// It is owned by the agent's resolver loop; State may be read from any
// goroutine.
type Executor struct {
	writer   Writer
	locker   Locker
	logger   zerolog.Logger
	observer Observer

	mu    sync.Mutex
	state State
}

// NewExecutor returns an executor starting from cfg.State.
func NewExecutor(cfg ExecutorConfig) (*Executor, error) {
	if cfg.Writer == nil {
		return nil, errors.New("cannot create executor: no state writer")
	}
	if cfg.Locker == nil {
		return nil, errors.New("cannot create executor: no locker")
	}
	if err := cfg.State.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create executor: %w", err)
	}
	return &Executor{writer: cfg.Writer, locker: cfg.Locker, logger: cfg.Logger, observer: cfg.Observer,
		state: cfg.State.Clone()}, nil
}

// State returns a copy of the current committed-or-in-progress state.
func (x *Executor) State() State {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.state.Clone()
}

// SetState records st as the unit's state (used by the resolver to enter or
// leave error state without running an operation).
func (x *Executor) SetState(st State) error {
	return x.write(&st)
}

// Run runs op under the machine lock. When the recorded operation is
// already Done, only its Commit runs: a finished hook is never run twice.
// The state of each phase is written before that phase's error is returned.
func (x *Executor) Run(ctx context.Context, op Operation) error {
	result, err := x.run(ctx, op)
	if x.observer != nil {
		x.observer.OperationEnded(result)
	}
	return err
}

// run is Run, saying how the operation ended.
func (x *Executor) run(ctx context.Context, op Operation) (Result, error) {
	log := x.logger.With().Str("op", op.String()).Logger()
	log.Debug().Msg("running operation")
	release, err := x.locker.Acquire(ctx, op.String())
	if err != nil {
		return Failed, fmt.Errorf("cannot run operation %q: %w", op, err)
	}
	defer release()

	if cur := x.State(); cur.Op == nil || cur.Op.Step != Done {
		log.Debug().Msg("preparing operation")
		st, err := op.Prepare(ctx, x.State())
		if errors.Is(err, ErrSkip) {
			if st == nil {
				cur.Op = nil
				st = &cur
			}
			log.Info().Msg("operation skipped")
			if err := x.write(st); err != nil {
				return Failed, err
			}
			return Skipped, nil
		}
		if err := x.step(st, err); err != nil {
			return Failed, err
		}
		log.Debug().Msg("executing operation")
		st, err = op.Execute(ctx, x.State())
		if err := x.step(st, err); err != nil {
			return Failed, err
		}
	}
	log.Debug().Msg("committing operation")
	st, err := op.Commit(ctx, x.State())
	if err := x.step(st, err); err != nil {
		return Failed, err
	}
	return Committed, nil
}

// step writes st (if any) and then returns the phase's error, or the write's.
func (x *Executor) step(st *State, phaseErr error) error {
	if err := x.write(st); err != nil {
		return errors.Join(phaseErr, err)
	}
	return phaseErr
}

func (x *Executor) write(st *State) error {
	if st == nil {
		return nil
	}
	if err := x.writer.Write(*st); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.state = st.Clone()
	x.state.Version = CurrentVersion
	return nil
}
