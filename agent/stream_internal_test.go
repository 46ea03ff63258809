package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/leadership"
)

// watchServer answers the unit watch as a controller does (a blocking
// query on one index) and the lease's own watch, counting the requests
// of each and the most unit watches it held at once.
type watchServer struct {
	mu        sync.Mutex
	index     uint64
	holder    string
	config    uint64
	noLease   bool // answer as a node that sends no lease in the unit watch
	fail      int  // answer the unit watch with a 404 unknown-unit
	changed   chan struct{}
	parkedCh  chan struct{} // closed and replaced when parked changes
	parked    int
	maxParked int
	unitCalls int
	leaseGets int
}

func newWatchServer(t *testing.T) (*watchServer, *client.Client) {
	s := &watchServer{index: 5, holder: "db/1", config: 1, changed: make(chan struct{}), parkedCh: make(chan struct{})}
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{Addresses: []string{strings.TrimPrefix(srv.URL, "https://")}, Token: "t",
		Timeout: 5 * time.Second, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

// set changes the state at the next index.
func (s *watchServer) set(f func(*watchServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
	s.index++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *watchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	unit := strings.HasSuffix(r.URL.Path, "/watch")
	s.mu.Lock()
	if unit {
		s.unitCalls++
	} else {
		s.leaseGets++
	}
	if unit && s.fail > 0 {
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"unknown unit","code":%q}`, api.CodeUnknownUnit)
		return
	}
	for after != 0 && s.index == after {
		ch := s.changed
		s.parked++
		s.maxParked = max(s.maxParked, s.parked)
		s.parkedChanged()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.parked--
		s.parkedChanged()
		if r.Context().Err() != nil {
			s.mu.Unlock()
			return
		}
	}
	lease := fmt.Sprintf(`{"holder":%q,"term":3,"start":"2026-01-01T00:00:00Z","duration":"30s","expiry":"2026-01-01T00:00:30Z","pins":[],"step_down":false}`, s.holder)
	body := fmt.Sprintf(`{"lease":%s}`, lease)
	if unit {
		body = fmt.Sprintf(`{"life":"alive","config_version":%d,"leader_settings_version":1,"operations":[]`, s.config)
		if !s.noLease {
			body += `,"lease":` + lease
		}
		body += "}"
	}
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(s.index, 10))
	s.mu.Unlock()
	w.Write([]byte(body))
}

func (s *watchServer) parkedChanged() {
	close(s.parkedCh)
	s.parkedCh = make(chan struct{})
}

// waitParked waits until the server holds n blocking queries.
func (s *watchServer) waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		parked, ch := s.parked, s.parkedCh
		s.mu.Unlock()
		if parked == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the server holds %d blocking queries, want %d", parked, n)
		}
	}
}

func (s *watchServer) counts() (unitCalls, leaseGets, maxParked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unitCalls, s.leaseGets, s.maxParked
}

func startStream(t *testing.T, c *client.Client) *unitStream {
	st := newUnitStream(c, "db/0", clocktest.New(time.Unix(0, 0)), zerolog.Nop(), fatal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return st
}

// TestStreamFeedsBothReadersFromOneQuery: the remote state watcher's and
// the tracker's reads are answered from one blocking query on the
// controller; each sees every change (config, then lease, back to back),
// and the lease's own endpoint is never asked.
func TestStreamFeedsBothReadersFromOneQuery(t *testing.T) {
	srv, c := newWatchServer(t)
	st := startStream(t, c)
	units := streamUnitClient{st.reader()}
	leases := streamLeaseClient{leaseClient{c}, st.reader()}
	ctx := t.Context()

	view, uidx, err := units.WatchUnit(ctx, "db/0", 0, time.Minute)
	if err != nil || view.ConfigVersion != 1 || view.Term != 3 {
		t.Fatalf("first view %+v at %d: %v", view, uidx, err)
	}
	l, lidx, err := leases.WatchLease(ctx, "db", 0, time.Minute)
	if err != nil || l.Holder != "db/1" || lidx != uidx {
		t.Fatalf("first lease %+v at %d: %v", l, lidx, err)
	}
	for i, change := range []func(*watchServer){
		func(s *watchServer) { s.config = 2 },
		func(s *watchServer) { s.holder = "" },
		func(s *watchServer) { s.config, s.holder = 3, "db/0" },
	} {
		type got struct {
			idx uint64
			err error
		}
		ur, lr := make(chan got, 1), make(chan got, 1)
		var gotView, gotLease = view, l
		go func() {
			v, i, err := units.WatchUnit(ctx, "db/0", uidx, time.Minute)
			gotView = v
			ur <- got{i, err}
		}()
		go func() {
			l, i, err := leases.WatchLease(ctx, "db", lidx, time.Minute)
			gotLease = l
			lr <- got{i, err}
		}()
		srv.waitParked(t, 1)
		srv.set(change)
		u, le := <-ur, <-lr
		if u.err != nil || le.err != nil || u.idx <= uidx || le.idx <= lidx {
			t.Fatalf("change %d: unit watch at %d (%v), lease watch at %d (%v)", i, u.idx, u.err, le.idx, le.err)
		}
		srv.mu.Lock()
		wantConfig, wantHolder := srv.config, srv.holder
		srv.mu.Unlock()
		if gotView.ConfigVersion != wantConfig || gotLease.Holder != wantHolder {
			t.Fatalf("change %d: config %d (want %d), holder %q (want %q)", i, gotView.ConfigVersion, wantConfig, gotLease.Holder, wantHolder)
		}
		view, l, uidx, lidx = gotView, gotLease, u.idx, le.idx
	}
	unitCalls, leaseGets, maxParked := srv.counts()
	if leaseGets != 0 || maxParked != 1 {
		t.Errorf("the controller saw %d lease reads and at most %d parked queries (want 0 and 1); %d unit watches", leaseGets, maxParked, unitCalls)
	}
}

// TestStreamLeaseFallsBackWithoutLease: against a node that sends no
// lease in the unit watch, the tracker's watch reads the lease itself.
func TestStreamLeaseFallsBackWithoutLease(t *testing.T) {
	srv, c := newWatchServer(t)
	srv.noLease = true
	st := startStream(t, c)
	leases := streamLeaseClient{leaseClient{c}, st.reader()}
	l, idx, err := leases.WatchLease(t.Context(), "db", 0, time.Minute)
	if err != nil || l.Holder != "db/1" || idx != 5 {
		t.Fatalf("lease %+v at %d: %v", l, idx, err)
	}
	// Now watched directly: a lease change reaches the tracker through
	// the lease's own blocking query.
	done := make(chan error, 1)
	go func() {
		l, _, err = leases.WatchLease(t.Context(), "db", idx, time.Minute)
		done <- err
	}()
	srv.waitParked(t, 2) // the stream's and the lease's own
	srv.set(func(s *watchServer) { s.holder = "db/2" })
	if err := <-done; err != nil || l.Holder != "db/2" {
		t.Fatalf("lease after change %+v: %v", l, err)
	}
	if _, leaseGets, _ := srv.counts(); leaseGets != 2 {
		t.Errorf("%d reads of the lease's own endpoint, want 2", leaseGets)
	}
}

// TestStreamFatalReachesEveryReader: an unknown unit ends the stream, and
// both readers get the error (the tracker as a fatal error).
func TestStreamFatalReachesEveryReader(t *testing.T) {
	srv, c := newWatchServer(t)
	srv.fail = 1
	st := startStream(t, c)
	_, _, uerr := streamUnitClient{st.reader()}.WatchUnit(t.Context(), "db/0", 0, time.Minute)
	_, _, lerr := streamLeaseClient{leaseClient{c}, st.reader()}.WatchLease(t.Context(), "db", 0, time.Minute)
	for _, err := range []error{uerr, lerr} {
		if !errors.Is(err, api.ErrUnknownUnit) || !fatal(err) {
			t.Errorf("reader's error %v, want the fatal unknown-unit", err)
		}
	}
	if unitCalls, _, _ := srv.counts(); unitCalls != 1 {
		t.Errorf("%d unit watches after a fatal answer, want 1", unitCalls)
	}
}

// TestStreamIndexGoesBack: an index that goes back (a restored
// controller) reaches the readers, which start over from it.
func TestStreamIndexGoesBack(t *testing.T) {
	srv, c := newWatchServer(t)
	st := startStream(t, c)
	r := st.reader()
	w, err := r.next(t.Context(), 0, time.Minute)
	if err != nil || w.Index != 5 {
		t.Fatalf("first answer at %d: %v", w.Index, err)
	}
	done := make(chan client.UnitWatch, 1)
	go func() {
		w, _ := r.next(t.Context(), 5, time.Minute)
		done <- w
	}()
	srv.waitParked(t, 1)
	srv.set(func(s *watchServer) { s.index = 1 }) // restored: index 2
	if w := <-done; w.Index != 2 {
		t.Fatalf("answer after the restore at %d, want 2", w.Index)
	}
	var _ leadership.Client = streamLeaseClient{}
}
