package hooktoolstest

import (
	"context"
	"slices"
	"sync"

	"github.com/uniter-dev/uniter/hooktools"
)

// ActionLog is a fake hooktools.ActionLogger: it records the messages
// sent, or fails with Err.
type ActionLog struct {
	mu       sync.Mutex
	messages []string
	// Err, if set, is returned by every LogAction.
	Err error
}

var _ hooktools.ActionLogger = (*ActionLog)(nil)

// LogAction implements hooktools.ActionLogger.
func (l *ActionLog) LogAction(_ context.Context, message string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Err != nil {
		return l.Err
	}
	l.messages = append(l.messages, message)
	return nil
}

// Messages returns the messages logged so far.
func (l *ActionLog) Messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.messages)
}
