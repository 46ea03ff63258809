// Package remotestate is the agent's view of the controller: one goroutine
// gathers what the controller says about this unit and its application and
// publishes it as an immutable Snapshot, with a coalescing change channel
// that never blocks whoever reports a change.
package remotestate

// Life is whether the unit is meant to exist.
type Life string

// Lives of a unit.
const (
	Alive Life = "alive"
	// Dying: the operator removes the unit; it steps down, runs stop and
	// remove, and its agent exits.
	Dying Life = "dying"
)

// Snapshot is the remote state at one moment. It holds only values, so a
// copy is a deep copy.
type Snapshot struct {
	// Life of the unit.
	Life Life
	// Leader is true while the leadership tracker holds the application
	// lease for this unit in Term.
	Leader bool
	// Term is the application's current leadership term.
	Term uint64
	// StepDown is set when the operator asked the leader to step down.
	StepDown bool
	// Gained counts the terms this unit's tracker has gained; a rise with
	// no leadership to show for it is a gained-and-lost flap.
	Gained uint64
	// LeaderSettingsVersion and ConfigVersion count changes; they start
	// at 1 once the application exists.
	LeaderSettingsVersion uint64
	ConfigVersion         uint64
	// ResolvedID increases with every `uniter resolved` for this unit;
	// ResolvedNoRetry tells how the latest one asked to resolve.
	ResolvedID      uint64
	ResolvedNoRetry bool
	// NextOperation is the head of the unit's operation queue: its running
	// operation if it has one (an agent restarted mid-run finds it there,
	// and aborts it), else its oldest pending one; zero when the queue is
	// empty. QueuedOperations counts the queue.
	NextOperation    Operation
	QueuedOperations int
	// Relations are the relations of the unit's application: who is in
	// their scope and the versions of the remote databags.
	Relations Relations
}

// Operation is a queued action or exec as the watch shows it; the agent
// reads its params when it starts it.
type Operation struct {
	ID string
	// Kind is "action" or "exec"; Action names an action.
	Kind, Action string
	// Status is "pending" or "running".
	Status string
}
