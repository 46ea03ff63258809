package lease

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// scanApplicationView is ApplicationView as it was before the FSM indexed
// each application's units: a scan (and sort) of every unit of the state.
// BenchmarkApplicationView measures both in the same run.
func (f *FSM) scanApplicationView(app string) (a Application, units []Unit, now time.Time, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	pa, ok := f.state.Applications[app]
	if !ok {
		return Application{}, nil, time.Time{}, false
	}
	for _, name := range slices.Sorted(maps.Keys(f.state.Units)) {
		if u := f.state.Units[name]; u.App == app {
			units = append(units, *u.Clone())
		}
	}
	return *pa.Clone(), units, f.state.GlobalTime, true
}

// benchFSM is an FSM holding B6b's state: units units spread over apps
// applications.
func benchFSM(b *testing.B, apps, units int) *FSM {
	b.Helper()
	f := NewFSM()
	index := uint64(0)
	for n := 0; n*apps < units; n++ {
		for i := range apps {
			if n*apps+i >= units {
				break
			}
			index++
			name := fmt.Sprintf("app%d/%d", i, n)
			data, err := Encode(RegisterUnit{Name: name, TokenHash: HashToken("token-" + name)})
			if err != nil {
				b.Fatal(err)
			}
			if res := f.Apply(index, data); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	}
	return f
}

// BenchmarkApplicationView: one application's view in a state of 100,000
// units of 30,000 applications, read through the index and by the scan it
// replaced; and registering units one by one into such a state.
func BenchmarkApplicationView(b *testing.B) {
	f := benchFSM(b, 30000, 100000)
	for _, bc := range []struct {
		name string
		view func(string) (Application, []Unit, time.Time, bool)
	}{{"index", f.ApplicationView}, {"scan", f.scanApplicationView}} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, units, _, ok := bc.view(fmt.Sprintf("app%d", i%30000)); !ok || len(units) < 3 {
					b.Fatalf("view: %d units, %v", len(units), ok)
				}
				i++
			}
		})
	}
}

// BenchmarkRegisterUnit: registering one more unit into B6b's state, and
// the token-index rebuild every registration paid before the FSM kept
// its indexes up to date incrementally (the rebuild alone, as it was).
func BenchmarkRegisterUnit(b *testing.B) {
	f := benchFSM(b, 30000, 100000)
	b.Run("incremental", func(b *testing.B) {
		index, n := f.Index(), 0
		for b.Loop() {
			index++
			n++
			data, err := Encode(RegisterUnit{Name: fmt.Sprintf("extra%d/0", n), TokenHash: HashToken(fmt.Sprint("extra-", n))})
			if err != nil {
				b.Fatal(err)
			}
			if res := f.Apply(index, data); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			f.mu.Lock()
			f.tokens = make(map[string]string, len(f.state.Units))
			for name, u := range f.state.Units {
				f.tokens[u.TokenHash] = name
			}
			f.mu.Unlock()
		}
	})
}

// BenchmarkSnapshot: what raft's snapshot of B6b's state costs a node:
// the deep copy taken on the FSM's goroutine, and its encoding.
func BenchmarkSnapshot(b *testing.B) {
	f := benchFSM(b, 30000, 100000)
	b.Run("copy", func(b *testing.B) {
		for b.Loop() {
			f.State()
		}
	})
	st := f.State()
	b.Run("encode", func(b *testing.B) {
		var n countingWriter
		for b.Loop() {
			n = 0
			if err := WriteSnapshot(&n, st); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/1e6, "MB")
	})
}

// countingWriter counts the bytes written to it.
type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// TestStoppedAfterFuncsDoNotPileUp: an agent re-parks its unit watch
// every few minutes on a unit that may not change for days; each time
// it stops the function of the wait before and registers a new one. The
// key's list must stay short, not grow by one per wait.
func TestStoppedAfterFuncsDoNotPileUp(t *testing.T) {
	f := NewFSM()
	data, err := Encode(RegisterUnit{Name: "db/0", TokenHash: HashToken("token-db-0-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	if res := f.Apply(1, data); res.Err != nil {
		t.Fatal(res.Err)
	}
	for range 1000 {
		f.AfterUnitChange("db/0", func() {}).Stop()
	}
	if n := len(f.after[unitKey("db/0")]); n > afterCompactAt {
		t.Fatalf("after 1,000 stopped waits the unit's list holds %d functions, want at most %d", n, afterCompactAt)
	}
}
