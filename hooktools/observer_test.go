package hooktools_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
)

// answers records the is-leader answers an observer is told.
type answers struct {
	mu  sync.Mutex
	got []bool
}

func (a *answers) IsLeaderAnswered(leader bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, leader)
}

func (a *answers) seen() []bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// TestObserverSeesEveryIsLeaderAnswer: each answer is-leader prints is
// reported, the sticky false included; a failed is-leader and the other
// tools that ask the backend (status-set --application) report nothing.
func TestObserverSeesEveryIsLeaderAnswer(t *testing.T) {
	obs := &answers{}
	srv := startServer(t, serverOpts{obs: obs})
	h := srv.register(t, nil)
	steps := []struct {
		setup func(b *hooktoolstest.Backend)
		argv  string
		want  []bool
	}{
		{argv: "is-leader", want: []bool{true}},
		{argv: "is-leader --format=json", want: []bool{true, true}},
		{argv: "status-set --application active", want: []bool{true, true}},
		{setup: func(b *hooktoolstest.Backend) { b.FailWith("IsLeader", errors.New("lease store unreachable")) },
			argv: "is-leader", want: []bool{true, true}},
		{argv: "is-leader", want: []bool{true, true, false}}, // sticky after the failure
	}
	for i, st := range steps {
		if st.setup != nil {
			st.setup(h.backend)
		}
		h.run(t, nil, argv(st.argv)...)
		if got := obs.seen(); !slices.Equal(got, st.want) {
			t.Fatalf("step %d (%s): observer saw %v, want %v", i, st.argv, got, st.want)
		}
	}
}
