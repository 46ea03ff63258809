package lease

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
)

// HashToken returns the form in which a unit token is stored: the lowercase
// hex SHA-256 of the token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

var (
	workloadStatuses = []string{"active", "blocked", "maintenance", "waiting", "unknown", "error", "terminated"}
	agentStatuses    = []string{"allocating", "idle", "executing", "error", "lost"}
)

// applyChanges applies changes ("" deletes) to values and reports whether
// anything changed.
func applyChanges(values, changes map[string]string) bool {
	changed := false
	for k, v := range changes {
		old, had := values[k]
		switch {
		case v == "" && had:
			delete(values, k)
			changed = true
		case v != "" && (!had || old != v):
			values[k] = v
			changed = true
		}
	}
	return changed
}

func validChanges(changes map[string]string) bool {
	for k := range changes {
		if k == "" {
			return false
		}
	}
	return true
}

func (c SetLeaderSettings) apply(s *State, index uint64) Result {
	if !validChanges(c.Changes) {
		return invalid("set leader settings", "empty key")
	}
	a, ok := s.Applications[c.App]
	if !ok || a.Lease.Holder != c.Unit || a.Lease.Term != c.Term || c.Unit == "" {
		return fail(ErrNotLeader)
	}
	if applyChanges(a.LeaderSettings.Values, c.Changes) {
		a.LeaderSettings.Version++
		s.touchApp(a, index)
	}
	return Result{Version: a.LeaderSettings.Version}
}

func (c SetConfig) apply(s *State, index uint64) Result {
	if !validChanges(c.Changes) {
		return invalid("set config", "empty key")
	}
	a, ok := s.Applications[c.App]
	if !ok {
		return fail(ErrUnknownApplication)
	}
	if c.IfVersion != nil && *c.IfVersion != a.Config.Version {
		return Result{Err: ErrStaleConfig, Version: a.Config.Version}
	}
	if err := checkConfig(a, c.Changes); err != nil {
		return fail(err)
	}
	if applyChanges(a.Config.Values, c.Changes) {
		a.Config.Version++
		s.touchApp(a, index)
	}
	return Result{Version: a.Config.Version}
}

func (c SetUnitStatus) apply(s *State, index uint64) Result {
	var allowed []string
	switch c.Kind {
	case StatusWorkload:
		allowed = workloadStatuses
	case StatusAgent:
		allowed = agentStatuses
	default:
		return invalid("set unit status", "unknown kind %q", c.Kind)
	}
	if !slices.Contains(allowed, c.Status) {
		return invalid("set unit status", "unknown %s status %q", c.Kind, c.Status)
	}
	u, ok := s.Units[c.Unit]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	st := &u.Workload
	if c.Kind == StatusAgent {
		st = &u.Agent
	}
	changed := !u.LastSeen.Equal(s.GlobalTime)
	if st.Status != c.Status || st.Message != c.Message {
		*st = Status{Status: c.Status, Message: c.Message, Since: s.GlobalTime}
		changed = true
	}
	u.LastSeen = s.GlobalTime
	if changed {
		s.touchUnit(u, index)
	}
	return Result{}
}

func (c SetApplicationVersion) apply(s *State, index uint64) Result {
	u, ok := s.Units[c.Unit]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	if u.ApplicationVersion != c.Version || !u.LastSeen.Equal(s.GlobalTime) {
		u.ApplicationVersion = c.Version
		u.LastSeen = s.GlobalTime
		s.touchUnit(u, index)
	}
	return Result{}
}

func (c RegisterUnit) apply(s *State, index uint64) Result {
	app, err := parseUnitName(c.Name)
	if err != nil {
		return invalid("register unit", "%v", err)
	}
	if !validTokenHash(c.TokenHash) {
		return invalid("register unit", "token hash is not 64 lowercase hex digits")
	}
	if err := validateSchema(c.ConfigSchema); err != nil {
		return invalid("register unit", "%v", err)
	}
	if err := validateEndpoints(c.Endpoints); err != nil {
		return invalid("register unit", "%v", err)
	}
	actions, err := validActionSpecs(c.Actions)
	if err != nil {
		return invalid("register unit", "%v", err)
	}
	if u, ok := s.Units[c.Name]; ok && u.TokenHash != c.TokenHash {
		return fail(ErrUnitExists)
	}
	if err := s.checkEndpointChange(app, c.Endpoints); err != nil {
		return invalid("register unit "+c.Name, "%v", err)
	}
	if _, ok := s.Units[c.Name]; ok {
		a := s.Applications[app]
		s.setSchema(a, c.ConfigSchema, index)
		s.setEndpoints(a, c.Endpoints, index)
		s.setActions(a, actions, index)
		return Result{}
	}
	a, ok := s.Applications[app]
	if !ok {
		// Versions start at 1, so that a new unit (which has seen
		// version 0) runs config-changed, and a new minion
		// leader-settings-changed, once after install.
		a = &Application{
			Name:           app,
			Lease:          Lease{Pins: map[string]Pin{}},
			LeaderSettings: Settings{Values: map[string]string{}, Version: 1},
			Config:         Settings{Values: map[string]string{}, Version: 1},
		}
		s.Applications[app] = a
	}
	s.setSchema(a, c.ConfigSchema, index)
	s.setEndpoints(a, c.Endpoints, index)
	s.setActions(a, actions, index)
	u := &Unit{
		Name:      c.Name,
		App:       app,
		TokenHash: c.TokenHash,
		Workload:  Status{Status: "unknown", Since: s.GlobalTime},
		Agent:     Status{Status: "allocating", Since: s.GlobalTime},
		Life:      LifeAlive,
	}
	s.Units[c.Name] = u
	s.touchUnit(u, index)
	s.touchApp(a, index)
	return Result{}
}

// setSchema replaces a's config schema with a non-nil schema.
func (s *State) setSchema(a *Application, schema map[string]Option, index uint64) {
	if schema == nil || reflect.DeepEqual(schema, a.ConfigSchema) {
		return
	}
	a.ConfigSchema = cloneSchema(schema)
	s.touchApp(a, index)
}

func (c RequestUnitRemoval) apply(s *State, index uint64) Result {
	u, ok := s.Units[c.Name]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	if u.Life != LifeDying {
		u.Life = LifeDying
		s.touchUnit(u, index)
	}
	return Result{}
}

func (c Resolve) apply(s *State, index uint64) Result {
	u, ok := s.Units[c.Unit]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	if c.After != 0 && c.After != u.ResolvedID {
		return Result{Err: ErrStaleResolve, Version: u.ResolvedID}
	}
	u.ResolvedID++
	u.ResolvedNoRetry = c.NoRetry
	s.touchUnit(u, index)
	return Result{Version: u.ResolvedID}
}

func (c SetApplicationStatus) apply(s *State, index uint64) Result {
	if !slices.Contains(workloadStatuses, c.Status) {
		return invalid("set application status", "unknown status %q", c.Status)
	}
	a, ok := s.Applications[c.App]
	if !ok || a.Lease.Holder != c.Unit || a.Lease.Term != c.Term || c.Unit == "" {
		return fail(ErrNotLeader)
	}
	if a.Status.Status != c.Status || a.Status.Message != c.Message {
		a.Status = Status{Status: c.Status, Message: c.Message, Since: s.GlobalTime}
		s.touchApp(a, index)
	}
	return Result{}
}

func (c DeregisterUnit) apply(s *State, index uint64) Result {
	u, ok := s.Units[c.Name]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	a := s.Applications[u.App]
	l := &a.Lease
	if l.Holder == c.Name {
		if l.Pinned() {
			return leaseResult(l, ErrPinned)
		}
		release(l)
	}
	for _, r := range s.relationsOf(u.App) {
		if r.InScope(c.Name) {
			s.leaveScope(r, c.Name, index)
		}
	}
	s.endUnitOperations(c.Name, index)
	s.touchUnit(u, index) // wakes the unit's own waiters: it is gone
	delete(s.Units, c.Name)
	s.touchApp(a, index)
	return leaseResult(l, nil)
}

func (c RecordMember) apply(s *State, index uint64) Result {
	if c.ID == "" || c.ProtoMin < 1 || c.ProtoMin > c.ProtoMax {
		return invalid("record member", "need an id and 1 <= min <= max, got %q %d..%d",
			c.ID, c.ProtoMin, c.ProtoMax)
	}
	if v := s.EffectiveVersion; v < c.ProtoMin || v > c.ProtoMax {
		return Result{Err: &RangeError{Node: c.ID, Min: c.ProtoMin, Max: c.ProtoMax, Effective: v}, Version: v}
	}
	m := Member{ProtoMin: c.ProtoMin, ProtoMax: c.ProtoMax, APIAddr: c.APIAddr, RaftAddr: c.RaftAddr}
	if old, ok := s.Members[c.ID]; !ok || old != m {
		s.Members[c.ID] = m
		s.Index = index
	}
	return Result{}
}

func (c ForgetMember) apply(s *State, index uint64) Result {
	if _, ok := s.Members[c.ID]; ok {
		delete(s.Members, c.ID)
		s.Index = index
	}
	return Result{}
}

func (c SetEffectiveVersion) apply(s *State, index uint64) Result {
	switch {
	case c.New < 1:
		return invalid("set effective version", "version %d is below 1", c.New)
	case c.New < c.Old:
		return invalid("set effective version", "the version never goes down (%d to %d)", c.Old, c.New)
	}
	if c.Old != s.EffectiveVersion {
		return Result{Err: ErrVersionMismatch, Version: s.EffectiveVersion}
	}
	for _, m := range s.Members {
		if c.New < m.ProtoMin || c.New > m.ProtoMax {
			return Result{Err: ErrVersionUnsupported, Version: s.EffectiveVersion}
		}
	}
	if c.New != s.EffectiveVersion {
		s.EffectiveVersion = c.New
		s.Index = index
	}
	return Result{Version: s.EffectiveVersion}
}
