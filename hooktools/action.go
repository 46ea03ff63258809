package hooktools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
)

// errNotAction is the action tools' error outside an action, in Juju's
// words.
var errNotAction = errors.New("not running an action")

// DefaultFailMessage is the message of `action-fail` without one (Juju's).
const DefaultFailMessage = "action failed without reason given, check action for errors"

// ActionLogger sends an action's progress messages (action-log) to the
// controller, which stamps them with its time.
type ActionLogger interface {
	LogAction(ctx context.Context, message string) error
}

// Action is the action a hook context runs: its params, read by
// action-get, and what action-set and action-fail record, which the agent
// reads with Results once the action's process has ended. It is safe for
// concurrent use.
type Action struct {
	// Name is the action's name; ID its operation id.
	Name, ID string

	params map[string]any
	logger ActionLogger

	mu      sync.Mutex
	results map[string]any
	failed  bool
	message string
}

// NewAction returns the action name (operation id) with params, a JSON
// object as the controller has it (empty: none). Integers become int64,
// other numbers float64, as Juju's YAML-decoded params are. logger
// receives action-log messages.
func NewAction(name, id string, params json.RawMessage, logger ActionLogger) (*Action, error) {
	p := map[string]any{}
	if len(params) > 0 && string(params) != "null" {
		dec := json.NewDecoder(bytes.NewReader(params))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil || p == nil {
			return nil, fmt.Errorf("cannot read params of action %q: not a JSON object", name)
		}
	}
	return &Action{Name: name, ID: id, params: numbers(p).(map[string]any), logger: logger, results: map[string]any{}}, nil
}

// numbers turns json.Numbers into int64 (integers that fit) or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// ActionResults is what an action's tools recorded.
type ActionResults struct {
	// Values are the action-set results, nested by dotted key; values are
	// strings.
	Values map[string]any
	// Failed is set by action-fail, with Message.
	Failed  bool
	Message string
}

// Results returns a copy of what the action's tools have recorded.
func (a *Action) Results() ActionResults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return ActionResults{Values: deepCopy(a.results), Failed: a.failed, Message: a.message}
}

func deepCopy(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		}
	}
	return out
}

// set records value at the nested keys, replacing whatever was on the
// way that is not a map (later writes win, as in Juju).
func (a *Action) set(keys []string, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.results
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = value
}

func (a *Action) fail(message string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed, a.message = true, message
}

// get returns the param at the dotted path keys (nil, false: none).
func (a *Action) get(keys []string) (any, bool) {
	var v any = a.params
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
