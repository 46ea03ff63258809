// Package hooks runs one charm hook the way Juju's unit agent does
// (HOOK-TOOLS.md §1): it finds the handler (an executable dispatch at the
// charm root, else hooks/<kind> run by that very path), builds a fresh
// environment, runs the handler in its own process group in the charm
// directory, streams its output into the log line by line, and kills the
// whole group on timeout or cancellation. RunAction and RunCommand run an
// action (dispatch with JUJU_DISPATCH_PATH=actions/<name>, else
// actions/<name>) and an exec's command line the same way, keeping the
// start of their output for the operation's results.
//
// Deciding what to do with the result (skip, commit, go into error state)
// is the caller's job: Run only reports ErrMissing, ErrNotExecutable,
// ErrTimeout, an *ExitError or a cancellation.
package hooks
