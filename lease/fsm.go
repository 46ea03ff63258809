package lease

import (
	"cmp"
	"context"
	"crypto/subtle"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FSM is the replicated state machine over a State: the raft wiring
// (package lease/raftnode) feeds it committed log entries with Apply and
// snapshots with Restore, and takes snapshots by reading State. Anyone may
// call the read and wait methods concurrently. Reads return deep copies.
// Apply never blocks on readers or waiters: it takes the lock for the
// length of one pure State.Apply and wakes waiters by closing a channel.
// The FSM is deterministic: it never reads a clock or does I/O.
type FSM struct {
	mu      sync.RWMutex
	state   *State
	changed chan struct{} // closed and replaced whenever state changes
	// keyed holds, per application (appKey), unit (unitKey) and relation
	// (relationKey) that a blocking query waits on, a channel closed and
	// dropped at that resource's next change. Waking only those waiters
	// keeps a write from waking every blocking query of the node (B6:
	// 30,000 watchers).
	keyed map[string]chan struct{}
	// after holds, per key as in keyed ("" for any change), the functions
	// AfterUnitChange and AfterApplicationChange registered: each is
	// called once, after the lock is released, at that key's next change.
	// Stopped ones are dropped as the list grows or the key fires.
	after map[string][]*AfterFunc
	// tokens maps token hashes to unit names: every API request looks its
	// token up, so this must not scan the units. Keying a map by a SHA-256
	// leaks nothing usable about a token.
	tokens map[string]string
	// appUnits lists each application's units, sorted by name, with
	// their token hashes: one application's status reads its units
	// without scanning (and sorting) every unit of the state (B6b:
	// 100,000), and a unit that goes takes its token out of tokens.
	// tokens and appUnits are derived from the state alone: kept up to
	// date from the units each applied command touched (a command that
	// adds or removes a unit touches it, to wake its watchers), and
	// rebuilt at Restore. Neither is replicated nor in snapshots.
	appUnits map[string][]unitRef
	// expired counts the leases advance-time released since this FSM
	// was made (metrics only: it is not part of the replicated state).
	expired atomic.Uint64
}

// NewFSM returns an FSM holding NewState().
func NewFSM() *FSM {
	return &FSM{state: NewState(), changed: make(chan struct{}), keyed: map[string]chan struct{}{},
		after: map[string][]*AfterFunc{}, tokens: map[string]string{}, appUnits: map[string][]unitRef{}}
}

// unitRef is one unit in FSM.appUnits.
type unitRef struct{ name, tokenHash string }

// Apply applies the encoded command data (see Encode) committed at log
// index index, and returns its Result. A payload that does not decode
// gives a Result whose Err says why and changes nothing.
func (f *FSM) Apply(index uint64, data []byte) Result {
	return f.ApplyEntries([]Entry{{Index: index, Data: data}})[0]
}

// Entry is one committed log entry's command data (see Encode) and index.
type Entry struct {
	Index uint64
	Data  []byte
}

// ApplyEntries applies committed entries in order, as Apply would one by
// one, and returns their Results: it decodes them before taking the lock,
// holds it once for all of them, and wakes each waiter once, so a batch
// of raft entries costs one lock and one wake-up.
func (f *FSM) ApplyEntries(entries []Entry) []Result {
	results := make([]Result, len(entries))
	ops := make([]Op, len(entries))
	for i, e := range entries {
		op, err := Decode(e.Data)
		if err != nil {
			results[i] = Result{Index: e.Index, Err: err}
			continue
		}
		ops[i] = op
	}
	var wake []chan struct{}
	var calls []*AfterFunc
	f.mu.Lock()
	changed := false
	for i, e := range entries {
		if ops[i] == nil {
			continue
		}
		before := f.state.Index
		res := f.state.Apply(e.Index, ops[i])
		f.expired.Add(uint64(len(res.Expired)))
		if f.state.Index != before {
			changed = true
			f.reindexTouched()
			for _, k := range f.state.touched {
				if ch, ok := f.keyed[k]; ok {
					wake = append(wake, ch)
					delete(f.keyed, k)
				}
				if fns, ok := f.after[k]; ok {
					calls = append(calls, fns...)
					delete(f.after, k)
				}
			}
		}
		results[i] = res
	}
	if changed {
		wake = append(wake, f.changed)
		f.changed = make(chan struct{})
		calls = append(calls, f.after[""]...)
		delete(f.after, "")
	}
	f.mu.Unlock()
	for _, ch := range wake {
		close(ch)
	}
	for _, a := range calls {
		a.fire()
	}
	return results
}

// Expired returns how many leases advance-time has released on this FSM
// since it was made: a counter for metrics, not replicated state.
func (f *FSM) Expired() uint64 { return f.expired.Load() }

// Restore replaces the whole state with the snapshot read from r (see
// WriteSnapshot), refusing (and keeping the current state) if the
// snapshot's format is unknown or its content invalid. Waiters are woken.
func (f *FSM) Restore(r io.Reader) error {
	s, err := ReadSnapshot(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = s
	f.indexUnits()
	wake := append(slices.Collect(maps.Values(f.keyed)), f.changed)
	f.changed = make(chan struct{})
	f.keyed = map[string]chan struct{}{}
	var calls []*AfterFunc
	for _, fns := range f.after {
		calls = append(calls, fns...)
	}
	f.after = map[string][]*AfterFunc{}
	f.mu.Unlock()
	for _, ch := range wake {
		close(ch)
	}
	for _, a := range calls {
		a.fire()
	}
	return nil
}

// read runs fn on the state under the read lock.
func read[T any](f *FSM, fn func(*State) T) T {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return fn(f.state)
}

// State returns a deep copy of the whole state.
func (f *FSM) State() *State { return read(f, (*State).Clone) }

// Index returns the log index of the last change.
func (f *FSM) Index() uint64 { return read(f, func(s *State) uint64 { return s.Index }) }

// GlobalTime returns the global time.
func (f *FSM) GlobalTime() time.Time {
	return read(f, func(s *State) time.Time { return s.GlobalTime })
}

// EffectiveVersion returns the cluster's effective protocol version.
func (f *FSM) EffectiveVersion() uint64 {
	return read(f, func(s *State) uint64 { return s.EffectiveVersion })
}

// Members returns a copy of the recorded controller members.
func (f *FSM) Members() map[string]Member {
	return read(f, func(s *State) map[string]Member { return maps.Clone(s.Members) })
}

// Member returns one node's member record and whether there is one,
// without copying the others (the API looks the leader up on every write).
func (f *FSM) Member(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.state.Members[id]
	return m, ok
}

// Lease returns a copy of app's lease and whether the application exists.
func (f *FSM) Lease(app string) (Lease, bool) {
	a, ok := f.Application(app)
	return a.Lease, ok
}

// Application returns a copy of app and whether it exists.
func (f *FSM) Application(app string) (Application, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.state.Applications[app]
	if !ok {
		return Application{}, false
	}
	return *a.Clone(), true
}

// Applications returns copies of every application, sorted by name.
func (f *FSM) Applications() []Application {
	return read(f, func(s *State) []Application {
		out := make([]Application, 0, len(s.Applications))
		for _, a := range s.Applications {
			out = append(out, *a.Clone())
		}
		slices.SortFunc(out, func(a, b Application) int { return cmp.Compare(a.Name, b.Name) })
		return out
	})
}

// Unit returns a copy of the named unit and whether it is registered.
func (f *FSM) Unit(name string) (Unit, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.state.Units[name]
	if !ok {
		return Unit{}, false
	}
	return *u.Clone(), true
}

// Relation returns a copy of relation id and whether it exists.
func (f *FSM) Relation(id int) (Relation, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.state.Relations[id]
	if !ok {
		return Relation{}, false
	}
	return *r.Clone(), true
}

// Relations returns copies of every relation, sorted by id.
func (f *FSM) Relations() []Relation {
	return f.relations(func(*State, *Relation) bool { return true })
}

// ApplicationRelations returns copies of the relations app takes part in
// (its peer relations included), sorted by id.
func (f *FSM) ApplicationRelations(app string) []Relation {
	return f.relations(func(_ *State, r *Relation) bool {
		_, ok := r.Endpoint(app)
		return ok
	})
}

// UnitRelations returns copies of the relations of the unit's application,
// whether or not the unit is in their scope yet (Relation.InScope says),
// sorted by id: what its agent follows. None for an unknown unit.
func (f *FSM) UnitRelations(unit string) []Relation {
	return f.relations(func(s *State, r *Relation) bool {
		u, ok := s.Units[unit]
		if !ok {
			return false
		}
		_, ok = r.Endpoint(u.App)
		return ok
	})
}

func (f *FSM) relations(keep func(*State, *Relation) bool) []Relation {
	return read(f, func(s *State) []Relation {
		var out []Relation
		for _, r := range s.sortedRelations(func(r *Relation) bool { return keep(s, r) }) {
			out = append(out, *r.Clone())
		}
		return out
	})
}

// RelationSummary is a relation without its databags' values: what a
// unit's watch and the status show, without copying every value.
type RelationSummary struct {
	ID        int
	Endpoints []RelationEndpoint
	Life      string
	// UnitVersions maps each unit in scope to its unit databag's version.
	UnitVersions map[string]uint64
	// AppVersions maps each application to its databag's version.
	AppVersions map[string]uint64
	ModifyIndex uint64
}

// Summary returns r's summary (a deep copy).
func (r *Relation) Summary() RelationSummary {
	out := RelationSummary{ID: r.ID, Endpoints: slices.Clone(r.Endpoints), Life: r.Life, ModifyIndex: r.ModifyIndex,
		UnitVersions: make(map[string]uint64, len(r.UnitData)), AppVersions: make(map[string]uint64, len(r.AppData))}
	for name, b := range r.UnitData {
		out.UnitVersions[name] = b.Version
	}
	for name, b := range r.AppData {
		out.AppVersions[name] = b.Version
	}
	return out
}

// UnitRelationSummaries is UnitRelations without the databags' values.
func (f *FSM) UnitRelationSummaries(unit string) []RelationSummary {
	return read(f, func(s *State) []RelationSummary {
		u, ok := s.Units[unit]
		if !ok {
			return nil
		}
		var out []RelationSummary
		for _, r := range s.relationsOf(u.App) {
			out = append(out, r.Summary())
		}
		return out
	})
}

// ApplicationRelationSummaries is ApplicationRelations without the
// databags' values.
func (f *FSM) ApplicationRelationSummaries(app string) []RelationSummary {
	return f.summaries(func(r *Relation) bool {
		_, ok := r.Endpoint(app)
		return ok
	})
}

// RelationSummaries is Relations without the databags' values.
func (f *FSM) RelationSummaries() []RelationSummary {
	return f.summaries(func(*Relation) bool { return true })
}

func (f *FSM) summaries(keep func(*Relation) bool) []RelationSummary {
	return read(f, func(s *State) []RelationSummary {
		var out []RelationSummary
		for _, r := range s.sortedRelations(keep) {
			out = append(out, r.Summary())
		}
		return out
	})
}

// indexUnits rebuilds tokens and appUnits from the state; callers hold
// the write lock.
func (f *FSM) indexUnits() {
	f.tokens = make(map[string]string, len(f.state.Units))
	f.appUnits = map[string][]unitRef{}
	for name, u := range f.state.Units {
		f.tokens[u.TokenHash] = name
		f.appUnits[u.App] = append(f.appUnits[u.App], unitRef{name: name, tokenHash: u.TokenHash})
	}
	for _, refs := range f.appUnits {
		slices.SortFunc(refs, compareRefs)
	}
}

func compareRefs(a, b unitRef) int { return cmp.Compare(a.name, b.name) }

// reindexTouched brings tokens and appUnits up to date with the units
// the last applied command touched: one registered and not indexed is
// added, one indexed and gone is removed. Callers hold the write lock.
func (f *FSM) reindexTouched() {
	for _, k := range f.state.touched {
		name, ok := strings.CutPrefix(k, unitKeyPrefix)
		if !ok {
			continue
		}
		app, err := parseUnitName(name)
		if err != nil {
			continue
		}
		refs := f.appUnits[app]
		i, indexed := slices.BinarySearchFunc(refs, unitRef{name: name}, compareRefs)
		u := f.state.Units[name]
		switch {
		case u != nil && !indexed:
			f.appUnits[app] = slices.Insert(refs, i, unitRef{name: name, tokenHash: u.TokenHash})
			f.tokens[u.TokenHash] = name
		case u == nil && indexed:
			if f.tokens[refs[i].tokenHash] == name {
				delete(f.tokens, refs[i].tokenHash)
			}
			if refs = slices.Delete(refs, i, i+1); len(refs) == 0 {
				delete(f.appUnits, app)
			} else {
				f.appUnits[app] = refs
			}
		}
	}
}

// UnitByTokenHash returns the unit registered with hash (see HashToken).
// The lookup is a map access; the final comparison is constant-time.
func (f *FSM) UnitByTokenHash(hash string) (Unit, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.state.Units[f.tokens[hash]]
	if !ok || subtle.ConstantTimeCompare([]byte(u.TokenHash), []byte(hash)) != 1 {
		return Unit{}, false
	}
	return *u.Clone(), true
}

// UnitIdentity is UnitByTokenHash for the unit's name and application
// only, without copying the unit: what every API request's authentication
// needs.
func (f *FSM) UnitIdentity(hash string) (name, app string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u, ok := f.state.Units[f.tokens[hash]]
	if !ok || subtle.ConstantTimeCompare([]byte(u.TokenHash), []byte(hash)) != 1 {
		return "", "", false
	}
	return u.Name, u.App, true
}

// HasUnit reports whether the named unit is registered (Unit without the
// copy).
func (f *FSM) HasUnit(name string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Units[name] != nil
}

// Units returns copies of every registered unit, sorted by name.
func (f *FSM) Units() []Unit { return f.units(func(*Unit) bool { return true }) }

// ApplicationUnits returns copies of app's registered units, sorted by
// name, without scanning the others.
func (f *FSM) ApplicationUnits(app string) []Unit {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.appUnitsOf(app)
}

// appUnitsOf is ApplicationUnits; callers hold the lock.
func (f *FSM) appUnitsOf(app string) []Unit {
	var out []Unit
	for _, ref := range f.appUnits[app] {
		out = append(out, *f.state.Units[ref.name].Clone())
	}
	return out
}

func (f *FSM) units(keep func(*Unit) bool) []Unit {
	return read(f, func(s *State) []Unit {
		var out []Unit
		for _, name := range slices.Sorted(maps.Keys(s.Units)) {
			if u := s.Units[name]; keep(u) {
				out = append(out, *u)
			}
		}
		return out
	})
}

// ApplicationView returns, read together, copies of app and of its units
// (sorted by name) and the global time, and whether app exists: one
// application's status without copying the whole state.
func (f *FSM) ApplicationView(app string) (a Application, units []Unit, now time.Time, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	pa, ok := f.state.Applications[app]
	if !ok {
		return Application{}, nil, time.Time{}, false
	}
	return *pa.Clone(), f.appUnitsOf(app), f.state.GlobalTime, true
}

// ApplicationIndex returns app's modify index (State.ApplicationIndex).
func (f *FSM) ApplicationIndex(app string) uint64 {
	return read(f, func(s *State) uint64 { return s.ApplicationIndex(app) })
}

// UnitIndex returns the unit's modify index (State.UnitIndex).
func (f *FSM) UnitIndex(name string) uint64 {
	return read(f, func(s *State) uint64 { return s.UnitIndex(name) })
}

// RelationIndex returns relation id's modify index (State.RelationIndex).
func (f *FSM) RelationIndex(id int) uint64 {
	return read(f, func(s *State) uint64 { return s.RelationIndex(id) })
}

// Watch returns a channel that is closed at the next change of the state
// (an applied command that changed anything, or a Restore). Take a new one
// after each wake-up; read the state after taking the channel, not before.
func (f *FSM) Watch() <-chan struct{} {
	return read(f, func(*State) chan struct{} { return f.changed })
}

// WatchApplication is Watch for app alone: the channel is closed when
// app's modify index moves (or at a Restore), so a write to another
// application does not wake the caller. For an application that does not
// exist it is Watch: ApplicationIndex is then the state's index.
func (f *FSM) WatchApplication(app string) <-chan struct{} {
	return f.watchKey(appKey(app), func(s *State) bool { return s.Applications[app] != nil })
}

// WatchUnit is WatchApplication for a unit's modify index (UnitIndex).
// A deregistered unit's channel is closed as it goes.
func (f *FSM) WatchUnit(name string) <-chan struct{} {
	return f.watchKey(unitKey(name), func(s *State) bool { return s.Units[name] != nil })
}

// WatchRelation is WatchApplication for a relation's modify index
// (RelationIndex). A removed relation's channel is closed as it goes.
func (f *FSM) WatchRelation(id int) <-chan struct{} {
	return f.watchKey(relationKey(id), func(s *State) bool { return s.Relations[id] != nil })
}

func (f *FSM) watchKey(key string, exists func(*State) bool) <-chan struct{} {
	// Most queries find the channel already made: share the lock with
	// readers and Apply's waiters, take it exclusively only to add one.
	f.mu.RLock()
	ch, ok := f.keyed[key]
	if !ok && !exists(f.state) {
		ch, ok = f.changed, true
	}
	f.mu.RUnlock()
	if ok {
		return ch
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !exists(f.state) {
		return f.changed
	}
	if ch, ok = f.keyed[key]; !ok {
		ch = make(chan struct{})
		f.keyed[key] = ch
	}
	return ch
}

// AfterFunc is a function registered with AfterUnitChange or
// AfterApplicationChange, to be called once at the next change of what it
// watches, unless stopped first.
type AfterFunc struct {
	fn   func()
	done atomic.Bool // called or stopped
}

// Stop keeps the function from being called. It reports whether it did:
// false if the function was already called (or Stop already ran).
func (a *AfterFunc) Stop() bool { return a.done.CompareAndSwap(false, true) }

// Pending reports whether the function is still to be called: neither
// called nor stopped.
func (a *AfterFunc) Pending() bool { return !a.done.Load() }

func (a *AfterFunc) fire() {
	if a.done.CompareAndSwap(false, true) {
		a.fn()
	}
}

// afterCompactAt is the length of a key's list of AfterFuncs at which
// registering another drops the stopped ones first: a key that never
// changes keeps at most this many stopped functions.
const afterCompactAt = 4

// AfterUnitChange registers fn to be called once, without the FSM's lock
// and in the goroutine that applied it, at the next change of the unit's
// modify index (the change WatchUnit signals; for a unit not registered,
// at the next change of the state), or at a Restore. fn must not block:
// it is called from raft's apply path. The state may be read in fn. A
// change that happened before the call is not reported: register first,
// then read the index, as with WatchUnit.
func (f *FSM) AfterUnitChange(name string, fn func()) *AfterFunc {
	return f.afterKey(unitKey(name), func(s *State) bool { return s.Units[name] != nil }, fn)
}

// AfterApplicationChange is AfterUnitChange for an application's modify
// index (the change WatchApplication signals).
func (f *FSM) AfterApplicationChange(app string, fn func()) *AfterFunc {
	return f.afterKey(appKey(app), func(s *State) bool { return s.Applications[app] != nil }, fn)
}

func (f *FSM) afterKey(key string, exists func(*State) bool, fn func()) *AfterFunc {
	a := &AfterFunc{fn: fn}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !exists(f.state) {
		key = ""
	}
	fns := f.after[key]
	if len(fns) >= afterCompactAt {
		fns = slices.DeleteFunc(fns, func(a *AfterFunc) bool { return a.done.Load() })
	}
	f.after[key] = append(fns, a)
	return a
}

// WaitIndex blocks until the state index exceeds after, then returns it.
// If ctx ends first it returns the current index and context.Cause(ctx), so
// a blocking query that timed out can still answer with the current state.
func (f *FSM) WaitIndex(ctx context.Context, after uint64) (uint64, error) {
	return f.wait(ctx, after, func(s *State) uint64 { return s.Index }, f.Watch)
}

// WaitApplication is WaitIndex for app's modify index.
func (f *FSM) WaitApplication(ctx context.Context, app string, after uint64) (uint64, error) {
	return f.wait(ctx, after, func(s *State) uint64 { return s.ApplicationIndex(app) },
		func() <-chan struct{} { return f.WatchApplication(app) })
}

// WaitEffectiveVersion blocks until the effective version is at least v,
// woken by the FSM's change notification (never a timer), and returns it.
// If ctx ends first it returns the current version and context.Cause(ctx).
func (f *FSM) WaitEffectiveVersion(ctx context.Context, v uint64) (uint64, error) {
	if v == 0 {
		return f.EffectiveVersion(), nil
	}
	return f.wait(ctx, v-1, func(s *State) uint64 { return s.EffectiveVersion }, f.Watch)
}

// WaitUnit is WaitIndex for the unit's modify index.
func (f *FSM) WaitUnit(ctx context.Context, name string, after uint64) (uint64, error) {
	return f.wait(ctx, after, func(s *State) uint64 { return s.UnitIndex(name) },
		func() <-chan struct{} { return f.WatchUnit(name) })
}

// WaitRelation is WaitIndex for relation id's modify index.
func (f *FSM) WaitRelation(ctx context.Context, id int, after uint64) (uint64, error) {
	return f.wait(ctx, after, func(s *State) uint64 { return s.RelationIndex(id) },
		func() <-chan struct{} { return f.WatchRelation(id) })
}

// wait takes watch's channel before reading index, so a change between
// the two still closes the channel it waits on.
func (f *FSM) wait(ctx context.Context, after uint64, index func(*State) uint64, watch func() <-chan struct{}) (uint64, error) {
	for {
		ch := watch()
		idx := read(f, index)
		if idx > after {
			return idx, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return read(f, index), context.Cause(ctx)
		}
	}
}
