package lease_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/leasetest"
)

// fsmHarness drives a lease.FSM with encoded commands, as raft does.
type fsmHarness struct {
	t     *testing.T
	fsm   *lease.FSM
	index uint64
}

func newFSMHarness(t *testing.T) *fsmHarness {
	h := &fsmHarness{t: t, fsm: lease.NewFSM()}
	h.must(lease.AdvanceTime{New: base})
	for _, u := range units {
		h.must(lease.RegisterUnit{Name: u, TokenHash: lease.HashToken("token-" + u)})
	}
	return h
}

func (h *fsmHarness) apply(op lease.Op) lease.Result {
	h.t.Helper()
	h.index++
	return leasetest.Apply(h.t, h.fsm, h.index, op)
}

func (h *fsmHarness) must(op lease.Op) lease.Result {
	h.t.Helper()
	res := h.apply(op)
	if res.Err != nil {
		h.t.Fatalf("%s: %v", op.Type(), res.Err)
	}
	return res
}

// populate exercises every part of the state.
func (h *fsmHarness) populate() {
	for _, op := range []lease.Op{
		claim("db/0", dur), claim("web/0", dur), pin("web", "alice"),
		pinUntil("web", "bob", time.Hour), stepDown("db"),
		leaderSet("web/0", 1, map[string]string{"k": "v"}),
		lease.SetConfig{App: "db", Changes: map[string]string{"port": "1"}},
		adv(0, 3*time.Second),
		lease.SetUnitStatus{Unit: "db/1", Kind: lease.StatusWorkload, Status: "blocked", Message: "m"},
		lease.SetApplicationVersion{Unit: "db/1", Version: "2"},
		lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: 3, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"},
		lease.SetEffectiveVersion{Old: 1, New: 2},
		lease.SetApplicationStatus{App: "web", Unit: "web/0", Term: 1, Status: "active", Message: "up"},
		lease.RequestUnitRemoval{Name: "db/2"},
		lease.Resolve{Unit: "db/1", NoRetry: true},
		lease.RegisterUnit{Name: "solo/0", TokenHash: lease.HashToken("s"), ConfigSchema: map[string]lease.Option{
			"port": {Type: lease.OptionInt, Default: ptr("1"), Description: "the port"},
			"name": {Type: lease.OptionString},
		}},
		lease.SetConfig{App: "solo", Changes: map[string]string{"port": "2"}},
		lease.RegisterUnit{Name: "zero/0", TokenHash: lease.HashToken("z"), ConfigSchema: map[string]lease.Option{}},
		claim("solo/0", dur), adv(3*time.Second, time.Minute),
	} {
		h.must(op)
	}
}

// snapshotBytes is what the raft wiring persists for fsm's state.
type snapshotBytes []byte

func (b snapshotBytes) Bytes() []byte     { return b }
func (b snapshotBytes) Reader() io.Reader { return bytes.NewReader(b) }

func snapshot(t *testing.T, fsm *lease.FSM) snapshotBytes {
	t.Helper()
	var buf bytes.Buffer
	if err := lease.WriteSnapshot(&buf, fsm.State()); err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	return snapshotBytes(buf.Bytes())
}

// roundTrip restores sink, h's snapshot, into a new FSM and checks that
// it holds h's state and snapshots to the same bytes; it returns the
// restored replica's harness, at h's index.
func roundTrip(t *testing.T, h *fsmHarness, sink snapshotBytes) *fsmHarness {
	t.Helper()
	restored := lease.NewFSM()
	if err := restored.Restore(sink.Reader()); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if diff := cmp.Diff(h.fsm.State(), restored.State(), ignoreScratch); diff != "" {
		t.Fatalf("restored state differs (-original +restored):\n%s", diff)
	}
	if again := snapshot(t, restored); !bytes.Equal(again.Bytes(), sink.Bytes()) {
		t.Error("snapshot of the restored state differs from the original snapshot")
	}
	checkUnitIndex(t, restored, nil)
	return &fsmHarness{t: t, fsm: restored, index: h.index}
}

func TestSnapshotRestoreIsIdentical(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	sink := snapshot(t, h.fsm)
	if !bytes.HasPrefix(sink.Bytes(), []byte(`{"format":1,"state":{`)) {
		t.Errorf("snapshot starts %.40s", sink.Bytes())
	}
	// Both replicas go on identically.
	next := roundTrip(t, h, sink)
	restored := next.fsm
	for _, op := range []lease.Op{adv(time.Minute, time.Hour), claim("db/1", dur), unpin("web", "alice")} {
		if diff := cmp.Diff(h.apply(op), next.apply(op), cmp.Comparer(sameErr)); diff != "" {
			t.Errorf("%s results differ:\n%s", op.Type(), diff)
		}
	}
	if diff := cmp.Diff(h.fsm.State(), restored.State(), ignoreScratch); diff != "" {
		t.Errorf("replicas diverged after restore:\n%s", diff)
	}
}

func sameErr(a, b error) bool {
	return errors.Is(a, b) || (a != nil && b != nil && a.Error() == b.Error())
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	good := snapshot(t, newFSMHarness(t).fsm).Bytes()
	for _, tc := range []struct {
		name, data string
		want       error
	}{
		{"future format", strings.Replace(string(good), `"format":1`, fmt.Sprintf(`"format":%d`, lease.SnapshotFormat+1), 1), lease.ErrSnapshotFormat},
		{"format 0", strings.Replace(string(good), `"format":1`, `"format":0`, 1), lease.ErrSnapshotFormat},
		{"missing format", `{"state":{}}`, lease.ErrSnapshotFormat},
		{"unknown field", strings.Replace(string(good), `"index":`, `"color":1,"index":`, 1), nil},
		{"holder is not a unit", strings.Replace(string(good), `"holder":""`, `"holder":"ghost/0"`, 1), nil},
		{"not JSON", `snapshot`, nil},
		{"unknown unit life", strings.Replace(string(good), `"life":"alive"`, `"life":"zombie"`, 1), nil},
		{"unknown option type", strings.Replace(string(good), `"config_schema":null`, `"config_schema":{"x":{"type":"list"}}`, 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFSMHarness(t)
			h.must(claim("db/0", dur))
			before := h.fsm.State()
			err := h.fsm.Restore(strings.NewReader(tc.data))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("restore: %v, want an error matching %v", err, tc.want)
			}
			if diff := cmp.Diff(before, h.fsm.State(), ignoreScratch); diff != "" {
				t.Errorf("refused restore changed the state:\n%s", diff)
			}
		})
	}
}

func TestApplyRefusesUndecodablePayloads(t *testing.T) {
	fsm := lease.NewFSM()
	res := fsm.Apply(2, []byte(`{"version":9}`))
	if !errors.Is(res.Err, lease.ErrUnsupportedVersion) || fsm.Index() != 0 {
		t.Errorf("result %+v, index %d", res, fsm.Index())
	}
	res = fsm.Apply(3, []byte(`not json`))
	if res.Err == nil || fsm.Index() != 0 {
		t.Errorf("result %+v, index %d", res, fsm.Index())
	}
}

func TestReadsAreDeepCopies(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	before := h.fsm.State()
	a, _ := h.fsm.Application("web")
	a.Lease.Pins["mallory"] = lease.Pin{}
	*a.Lease.Pins["bob"].Until = time.Time{}
	a.LeaderSettings.Values["k"] = "x"
	l, _ := h.fsm.Lease("web")
	l.Pins["eve"] = lease.Pin{}
	for _, app := range h.fsm.Applications() {
		app.Config.Values["z"] = "z"
	}
	s := h.fsm.State()
	s.Units["db/0"].Agent.Status = "lost"
	h.fsm.Members()["n9"] = lease.Member{}
	if diff := cmp.Diff(before, h.fsm.State(), ignoreScratch); diff != "" {
		t.Errorf("a caller changed the FSM through a read:\n%s", diff)
	}
}

func TestReadAPI(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	if u, ok := h.fsm.UnitByTokenHash(lease.HashToken("token-db/1")); !ok || u.Name != "db/1" {
		t.Errorf("by token: %v %v", u.Name, ok)
	}
	if _, ok := h.fsm.UnitByTokenHash(lease.HashToken("wrong")); ok {
		t.Error("found a unit by a wrong token")
	}
	if u, ok := h.fsm.Unit("db/1"); !ok || u.Workload.Status != "blocked" || u.ApplicationVersion != "2" {
		t.Errorf("unit %+v", u)
	}
	var names []string
	for _, u := range h.fsm.ApplicationUnits("db") {
		names = append(names, u.Name)
	}
	if diff := cmp.Diff([]string{"db/0", "db/1", "db/2"}, names); diff != "" {
		t.Errorf("db units:\n%s", diff)
	}
	if got := len(h.fsm.Units()); got != len(units)+2 {
		t.Errorf("%d units", got)
	}
	if apps := h.fsm.Applications(); len(apps) != 4 || apps[0].Name != "db" || apps[2].Name != "web" {
		t.Errorf("applications %v", apps)
	}
	if l, ok := h.fsm.Lease("solo"); !ok || !l.Vacant() || l.Term != 1 {
		t.Errorf("solo lease %+v", l)
	}
	if !h.fsm.GlobalTime().Equal(at(time.Minute)) || h.fsm.EffectiveVersion() != 2 || len(h.fsm.Members()) != 1 {
		t.Error("cluster reads")
	}
	if _, ok := h.fsm.Application("nope"); ok {
		t.Error("found an unknown application")
	}
}

func TestWatchIsClosedOnlyByChanges(t *testing.T) {
	h := newFSMHarness(t)
	ch := h.fsm.Watch()
	h.apply(claim("nope/0", dur)) // refused: no change
	select {
	case <-ch:
		t.Fatal("watch fired without a change")
	default:
	}
	h.must(claim("db/0", dur))
	select {
	case <-ch:
	default:
		t.Fatal("watch did not fire on a change")
	}
}

func TestWaitApplicationBlocksUntilItChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFSMHarness(t)
		after := h.fsm.ApplicationIndex("db")
		done := make(chan uint64)
		go func() {
			idx, err := h.fsm.WaitApplication(t.Context(), "db", after)
			if err != nil {
				t.Errorf("wait: %v", err)
			}
			done <- idx
		}()
		synctest.Wait()
		h.must(lease.SetUnitStatus{Unit: "db/0", Kind: lease.StatusAgent, Status: "idle"})
		h.must(claim("web/0", dur))
		synctest.Wait()
		select {
		case idx := <-done:
			t.Fatalf("woke at %d for another resource's change", idx)
		default:
		}
		res := h.must(claim("db/0", dur))
		if idx := <-done; idx != res.Index {
			t.Errorf("woke at index %d, want %d", idx, res.Index)
		}
	})
}

func TestWaitTimesOutWithTheCurrentIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFSMHarness(t)
		now := h.fsm.UnitIndex("db/0")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		idx, err := h.fsm.WaitUnit(ctx, "db/0", now)
		if !errors.Is(err, context.DeadlineExceeded) || idx != now {
			t.Errorf("wait = %d, %v; want %d and the deadline", idx, err, now)
		}
		if idx, err := h.fsm.WaitIndex(ctx, 0); err != nil || idx != h.fsm.Index() {
			t.Errorf("wait for a passed index = %d, %v", idx, err)
		}
	})
}

func TestRestoreWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFSMHarness(t)
		h.populate()
		sink := snapshot(t, h.fsm)
		fresh := lease.NewFSM()
		done := make(chan uint64)
		go func() {
			idx, _ := fresh.WaitUnit(t.Context(), "db/1", 0)
			done <- idx
		}()
		synctest.Wait()
		if err := fresh.Restore(sink.Reader()); err != nil {
			t.Fatal(err)
		}
		if idx := <-done; idx != h.fsm.UnitIndex("db/1") {
			t.Errorf("woke at %d", idx)
		}
	})
}

// TestConcurrentReadsAndApplies is for the race detector.
func TestConcurrentReadsAndApplies(t *testing.T) {
	h := newFSMHarness(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-h.fsm.Watch():
				}
				h.fsm.Applications()
				h.fsm.Units()
				h.fsm.State()
			}
		})
	}
	for i := range 200 {
		u := units[i%3]
		h.apply(claim(u, dur))
		h.apply(revoke(u))
	}
	close(stop)
	wg.Wait()
}

// checkUnitIndex checks the FSM's per-application unit index against a
// scan of its whole state: every application's units (ApplicationUnits,
// ApplicationView) are the state's units of it, sorted by name, and every
// unit's token finds it. Of names (units that may have been registered
// with the token "token-NAME"), one not registered must not authenticate.
func checkUnitIndex(t *testing.T, f *lease.FSM, names []string) {
	t.Helper()
	st := f.State()
	want := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(st.Units)) {
		u := st.Units[name]
		want[u.App] = append(want[u.App], name)
		if got, ok := f.UnitByTokenHash(u.TokenHash); !ok || got.Name != name {
			t.Fatalf("unit %s: its token finds %q, %v", name, got.Name, ok)
		}
	}
	for app := range st.Applications {
		var got, viewed []string
		for _, u := range f.ApplicationUnits(app) {
			got = append(got, u.Name)
		}
		_, units, _, ok := f.ApplicationView(app)
		for _, u := range units {
			viewed = append(viewed, u.Name)
			if !cmp.Equal(u, *st.Units[u.Name]) {
				t.Fatalf("ApplicationView(%s): unit %s differs from the state's", app, u.Name)
			}
		}
		if !ok || !slices.Equal(got, want[app]) || !slices.Equal(viewed, want[app]) {
			t.Fatalf("application %s: ApplicationUnits %v, ApplicationView %v (%v); the state has %v", app, got, viewed, ok, want[app])
		}
	}
	if _, _, _, ok := f.ApplicationView("no-such-app"); ok {
		t.Fatal("ApplicationView of an unknown application succeeded")
	}
	for _, name := range names {
		if _, ok := st.Units[name]; ok {
			continue
		}
		if u, ok := f.UnitByTokenHash(lease.HashToken("token-" + name)); ok {
			t.Fatalf("unregistered unit %s: its old token still finds %s", name, u.Name)
		}
	}
}

// TestApplicationViewReadsOneApplication: an application's units come
// from the index, sorted by name as a scan of the state sorts them, as
// units come and go, across a restore, and with many other applications.
func TestApplicationViewReadsOneApplication(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	var names []string
	for i := range 50 {
		for _, n := range []int{10, 2, 1, 0} { // out of order: db-x/10 sorts before db-x/2
			name := fmt.Sprintf("app%d/%d", i, n)
			names = append(names, name)
			h.must(lease.RegisterUnit{Name: name, TokenHash: lease.HashToken("token-" + name)})
		}
	}
	checkUnitIndex(t, h.fsm, names)
	_, units, _, ok := h.fsm.ApplicationView("app7")
	var got []string
	for _, u := range units {
		got = append(got, u.Name)
	}
	if want := []string{"app7/0", "app7/1", "app7/10", "app7/2"}; !ok || !slices.Equal(got, want) {
		t.Fatalf("ApplicationView(app7) units = %v, %v; want %v", got, ok, want)
	}
	for _, name := range []string{"app7/1", "app7/10", "app9/0", "app9/1", "app9/2", "app9/10"} {
		h.must(lease.DeregisterUnit{Name: name})
	}
	checkUnitIndex(t, h.fsm, names)
	if _, units, _, ok := h.fsm.ApplicationView("app9"); !ok || len(units) != 0 {
		t.Fatalf("ApplicationView(app9) after its units went: %d units, %v; want none of a known application", len(units), ok)
	}
	h.must(lease.RegisterUnit{Name: "app7/10", TokenHash: lease.HashToken("token-app7/10")})
	checkUnitIndex(t, h.fsm, names)
	roundTrip(t, h, snapshot(t, h.fsm))
}

func TestTokenIndexFollowsUnitsAndRestore(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	byToken := func(f *lease.FSM, unit string) bool {
		u, ok := f.UnitByTokenHash(lease.HashToken("token-" + unit))
		return ok && u.Name == unit
	}
	h.must(lease.RegisterUnit{Name: "db/7", TokenHash: lease.HashToken("token-db/7")})
	if !byToken(h.fsm, "db/7") {
		t.Fatal("a newly registered unit's token is not found")
	}
	h.must(lease.DeregisterUnit{Name: "db/7"})
	if byToken(h.fsm, "db/7") {
		t.Fatal("a deregistered unit's token still authenticates")
	}
	sink := snapshot(t, h.fsm)
	restored := lease.NewFSM()
	if err := restored.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	if !byToken(restored, "db/1") || byToken(restored, "db/7") {
		t.Fatal("the token index does not match a restored state")
	}
}

// TestKeyedWatchesWakeExactlyWhatChanged drives random commands of every
// kind through the FSM with a WatchApplication and a WatchUnit channel
// taken on every application and unit name before each one (some not
// registered yet), and an AfterApplicationChange and AfterUnitChange
// function registered beside each. A resource whose modify index moved
// must find its channel closed and its function called (no missed
// wake-up); an existing resource whose index did not move must not (no
// herd).
func TestKeyedWatchesWakeExactlyWhatChanged(t *testing.T) {
	apps := []string{"db", "web", "solo"}
	names := []string{"db/0", "db/1", "db/2", "web/0", "solo/0"}
	for seed := range uint64(20) {
		h := newFSMHarness(t)
		r := rand.New(rand.NewPCG(seed, 7))
		now := time.Duration(0)
		for step := range 300 {
			unit := names[r.IntN(len(names))]
			app := appOf(unit)
			ops := []lease.Op{
				claim(unit, dur), extend(unit, dur), revoke(unit), stepDown(app),
				pin(app, "op"), unpin(app, "op"),
				leaderSet(unit, uint64(1+r.IntN(3)), map[string]string{"k": fmt.Sprint(r.IntN(3))}),
				lease.SetConfig{App: app, Changes: map[string]string{"port": fmt.Sprint(r.IntN(3))}},
				lease.SetUnitStatus{Unit: unit, Kind: lease.StatusWorkload, Status: "active", Message: fmt.Sprint(r.IntN(2))},
				lease.SetApplicationVersion{Unit: unit, Version: fmt.Sprint(r.IntN(2))},
				lease.SetApplicationStatus{App: app, Unit: unit, Term: uint64(1 + r.IntN(3)), Status: "active"},
				lease.RequestUnitRemoval{Name: unit},
				lease.Resolve{Unit: unit},
				lease.RegisterUnit{Name: unit, TokenHash: lease.HashToken("token-" + unit)},
				lease.DeregisterUnit{Name: unit},
				lease.RecordMember{ID: "n1", ProtoMin: 1, ProtoMax: uint64(1 + r.IntN(2))},
			}
			var op lease.Op
			if r.IntN(4) == 0 {
				d := time.Duration(1+r.IntN(40)) * time.Second
				op, now = adv(now, now+d), now+d
			} else {
				op = ops[r.IntN(len(ops))]
			}
			type watched struct {
				ch     <-chan struct{}
				fn     *lease.AfterFunc
				called *atomic.Int32
				before uint64
				exists bool
			}
			appW, unitW := map[string]watched{}, map[string]watched{}
			for _, a := range apps {
				_, ok := h.fsm.Application(a)
				called := new(atomic.Int32)
				fn := h.fsm.AfterApplicationChange(a, func() { called.Add(1) })
				appW[a] = watched{h.fsm.WatchApplication(a), fn, called, h.fsm.ApplicationIndex(a), ok}
			}
			for _, u := range names {
				_, ok := h.fsm.Unit(u)
				called := new(atomic.Int32)
				fn := h.fsm.AfterUnitChange(u, func() { called.Add(1) })
				unitW[u] = watched{h.fsm.WatchUnit(u), fn, called, h.fsm.UnitIndex(u), ok}
			}
			h.apply(op)
			checkUnitIndex(t, h.fsm, names)
			check := func(kind, name string, w watched, after uint64) {
				closed := false
				select {
				case <-w.ch:
					closed = true
				default:
				}
				calls := w.called.Load()
				switch {
				case after != w.before && !closed:
					t.Fatalf("seed %d step %d: %s %s: %s moved its index %d → %d but its watch was not closed", seed, step, op.Type(), kind, name, w.before, after)
				case w.exists && after == w.before && closed:
					t.Fatalf("seed %d step %d: %s: %s %s did not change but its watch was closed", seed, step, op.Type(), kind, name)
				case after != w.before && calls != 1:
					t.Fatalf("seed %d step %d: %s %s: %s moved its index %d → %d but its function was called %d times", seed, step, op.Type(), kind, name, w.before, after, calls)
				case w.exists && after == w.before && calls != 0:
					t.Fatalf("seed %d step %d: %s: %s %s did not change but its function was called", seed, step, op.Type(), kind, name)
				}
				w.fn.Stop() // the next step registers its own
			}
			for a, w := range appW {
				check("application", a, w, h.fsm.ApplicationIndex(a))
			}
			for u, w := range unitW {
				check("unit", u, w, h.fsm.UnitIndex(u))
			}
		}
	}
}

// TestRestoreClosesKeyedWatches: a Restore replaces the whole state, so
// the queries parked on existing applications and units wake too.
func TestRestoreClosesKeyedWatches(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	sink := snapshot(t, h.fsm)
	app, unit := h.fsm.WatchApplication("db"), h.fsm.WatchUnit("db/1")
	if err := h.fsm.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan struct{}{"application db": app, "unit db/1": unit} {
		select {
		case <-ch:
		default:
			t.Errorf("the watch on %s was not closed by Restore", name)
		}
	}
}

// TestAfterFuncs: a registered function runs once at its resource's
// change and never after Stop; Restore calls every one still pending
// and none of those stopped.
func TestAfterFuncs(t *testing.T) {
	h := newFSMHarness(t)
	h.populate()
	var calls atomic.Int32
	count := func() { calls.Add(1) }

	a := h.fsm.AfterUnitChange("db/1", count)
	h.must(lease.SetUnitStatus{Unit: "db/1", Kind: lease.StatusWorkload, Status: "active", Message: "one"})
	h.must(lease.SetUnitStatus{Unit: "db/1", Kind: lease.StatusWorkload, Status: "active", Message: "two"})
	if got := calls.Load(); got != 1 {
		t.Fatalf("two changes of db/1 called its function %d times, want once", got)
	}
	if a.Stop() {
		t.Fatal("Stop of a function already called reported that it stopped it")
	}

	calls.Store(0)
	b := h.fsm.AfterUnitChange("db/1", count)
	if !b.Stop() {
		t.Fatal("Stop of a pending function reported it was not pending")
	}
	h.must(lease.SetUnitStatus{Unit: "db/1", Kind: lease.StatusWorkload, Status: "active", Message: "three"})
	if got := calls.Load(); got != 0 {
		t.Fatalf("a stopped function was called %d times", got)
	}

	// Registered and stopped 100 times on a unit that does not change:
	// only the last (pending) one may run at the Restore.
	for range 100 {
		h.fsm.AfterUnitChange("db/2", count).Stop()
	}
	h.fsm.AfterUnitChange("db/2", count)
	h.fsm.AfterApplicationChange("db", count)
	h.fsm.AfterUnitChange("nosuch/0", count)
	sink := snapshot(t, h.fsm)
	if err := h.fsm.Restore(sink.Reader()); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("Restore called %d functions, want the 3 pending ones", got)
	}
}
