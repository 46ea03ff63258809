package churn

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
)

// Observation is one answer of the controller to a blocking query on an
// application's lease: the lease as it stood at some instant between Sent
// and At (CLOCK_MONOTONIC), at modify index Index.
type Observation struct {
	Sent, At int64
	Index    uint64
	// Holder is "" while the lease is vacant; Term is then the last term.
	Holder   string
	Term     uint64
	StepDown bool
}

func (o Observation) String() string {
	holder := o.Holder
	if holder == "" {
		holder = "vacant"
	}
	s := fmt.Sprintf("%s term %d at index %d", holder, o.Term, o.Index)
	if o.StepDown {
		s += " (step-down requested)"
	}
	return s
}

// History is what a Recorder saw of a lease, in index order, which is the
// raft log's order: a lease state once left never comes back.
type History []Observation

// Recorder follows an application's lease at the controller with blocking
// queries (index and wait, as a minion's tracker does) and keeps every
// change it sees with its time. It is the controller's side of the
// checker: the lease each term held, and when the recorder saw it move on.
type Recorder struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	hist   History
	errors int
}

// recorderWait is the wait of each blocking query, and recorderRetry the
// pause after a failed one (a node killed, a leader election).
const (
	recorderWait  = 5 * time.Second
	recorderRetry = 50 * time.Millisecond
)

// Record starts recording app's lease through cl; Stop ends it.
func Record(cl *client.Client, app string, clk clock.Clock) *Recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.run(ctx, cl, app, clk)
	}()
	return r
}

func (r *Recorder) run(ctx context.Context, cl *client.Client, app string, clk clock.Clock) {
	var index uint64
	for ctx.Err() == nil {
		sent := Now()
		l, next, err := cl.WatchLease(ctx, app, index, recorderWait)
		at := Now()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.mu.Lock()
			r.errors++
			r.mu.Unlock()
			select {
			case <-clk.After(recorderRetry):
			case <-ctx.Done():
			}
			continue
		}
		// A node that is behind answers a wait that timed out with its own
		// older index: that is no news (the log only moves forward).
		if next <= index {
			continue
		}
		index = next
		r.mu.Lock()
		r.hist = append(r.hist, Observation{Sent: sent, At: at, Index: next, Holder: l.Holder, Term: l.Term, StepDown: l.StepDown})
		r.mu.Unlock()
	}
}

// History returns what the recorder has seen so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(History(nil), r.hist...)
}

// Stop ends the recording and returns the history and how many queries
// failed.
func (r *Recorder) Stop() (History, int) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hist, r.errors
}

// WriteFile writes the history to path, one observation a line,
// `<sent-ns> <at-ns> <index> <holder|-> <term> <step-down>`, for a look
// after a run.
func (h History) WriteFile(path string) error {
	var b strings.Builder
	for _, o := range h {
		holder := o.Holder
		if holder == "" {
			holder = "-"
		}
		fmt.Fprintf(&b, "%d %d %d %s %d %t\n", o.Sent, o.At, o.Index, holder, o.Term, o.StepDown)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write the lease history: %w", err)
	}
	return nil
}

// terms summarises a history per term: its holder, and the time the
// recorder first saw the lease past it (vacant at that term, or a later
// term). A term the recorder never saw held is absent.
func (h History) terms() map[uint64]termSpan {
	out := map[uint64]termSpan{}
	var open []uint64 // terms seen held and not yet seen ended
	for _, o := range h {
		var still []uint64
		for _, t := range open {
			if o.Term > t || (o.Term == t && o.Holder == "") {
				s := out[t]
				s.End, s.EndedBy = o.At, o
				out[t] = s
				continue
			}
			still = append(still, t)
		}
		open = still
		if o.Holder == "" {
			continue
		}
		if _, ok := out[o.Term]; !ok {
			out[o.Term] = termSpan{Holder: o.Holder, First: o.At}
			open = append(open, o.Term)
		}
	}
	return out
}

// termSpan is one term of a History.
type termSpan struct {
	Holder string
	// First is when the recorder first saw the term held, and End when it
	// first saw the lease past it (0: never), by EndedBy.
	First, End int64
	EndedBy    Observation
}
