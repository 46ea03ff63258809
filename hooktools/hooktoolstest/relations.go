package hooktoolstest

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/uniter-dev/uniter/hooktools"
)

// Relations is a fake hooktools.RelationBackend: databags in memory, by
// relation id and owner. A bag never set answers ErrSettingsNotFound.
type Relations struct {
	mu    sync.Mutex
	bags  map[string]map[string]string
	reads int
	goal  hooktools.GoalState
}

// SetGoal sets what GoalState answers.
func (r *Relations) SetGoal(g hooktools.GoalState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.goal = g
}

// GoalState implements hooktools.RelationBackend.
func (r *Relations) GoalState(context.Context) (hooktools.GoalState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.goal, nil
}

var _ hooktools.RelationBackend = (*Relations)(nil)

func bagName(id int, owner string, app bool) string { return fmt.Sprintf("%d/%s/%v", id, owner, app) }

// Set stores owner's bag (an application's if app) in relation id.
func (r *Relations) Set(id int, owner string, app bool, bag map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bags == nil {
		r.bags = map[string]map[string]string{}
	}
	r.bags[bagName(id, owner, app)] = maps.Clone(bag)
}

// Reads counts ReadSettings calls.
func (r *Relations) Reads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads
}

// ReadSettings implements hooktools.RelationBackend.
func (r *Relations) ReadSettings(_ context.Context, id int, owner string, app bool) (map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	bag, ok := r.bags[bagName(id, owner, app)]
	if !ok {
		return nil, fmt.Errorf("relation %d, %s: %w", id, owner, hooktools.ErrSettingsNotFound)
	}
	return maps.Clone(bag), nil
}
