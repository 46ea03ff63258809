package raftnode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/pki"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// envProcNode, when set, makes the test binary a controller node process
// for TestSIGSTOPLeaderKeepsLeases instead of running tests; its value is
// the node's procNodeSpec as JSON.
const envProcNode = "RAFTNODE_TEST_PROC_NODE"

// procNodeSpec configures a node process.
type procNodeSpec struct {
	ID        string        `json:"id"`
	Dir       string        `json:"dir"`
	Bootstrap bool          `json:"bootstrap"`
	Tick      time.Duration `json:"tick"`
	Raft      time.Duration `json:"raft"` // heartbeat, election and leader lease timeouts
	// CACert and CAKey are the cluster CA (PEM): each node issues its
	// own raft certificate with it.
	CACert string `json:"ca_cert"`
	CAKey  string `json:"ca_key"`
}

// procNodeAddrs is what a node process writes to Dir/ctl.json once it
// serves: its control HTTP address and its raft address.
type procNodeAddrs struct {
	HTTP string `json:"http"`
	Raft string `json:"raft"`
}

// procAnswer is a node process's answer to /apply.
type procAnswer struct {
	Err       string       `json:"err,omitempty"` // Node.Apply's error
	Retryable bool         `json:"retryable,omitempty"`
	ResultErr string       `json:"result_err,omitempty"`
	Lease     *lease.Lease `json:"lease,omitempty"`
}

// procState is a node process's answer to /state.
type procState struct {
	Leader  bool              `json:"leader"`
	Global  time.Time         `json:"global"`
	Holders map[string]string `json:"holders"` // application → holder ("" vacant)
}

// runProcNode is the node process: a raftnode.Node with real clocks and a
// small HTTP API for the test (apply an encoded command, read the state,
// add a voter) until SIGTERM.
func runProcNode(specJSON string) int {
	var spec procNodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "bad node spec:", err)
		return 2
	}
	ca, err := pki.LoadCA([]byte(spec.CACert), []byte(spec.CAKey))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	tlsCfg, err := issueTLS(ca, spec.ID)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	n, err := raftnode.Open(ctx, raftnode.Config{
		ID: spec.ID, DataDir: spec.Dir, RaftAddr: "127.0.0.1:0", TLS: tlsCfg, APIAddr: "http://" + spec.ID + ".example:8080",
		Bootstrap: spec.Bootstrap, Clock: clock.Real,
		Logger: zerolog.New(os.Stderr).With().Timestamp().Logger().Level(zerolog.InfoLevel),
		Tick:   spec.Tick, ApplyTimeout: 5 * time.Second,
		HeartbeatTimeout: spec.Raft, ElectionTimeout: spec.Raft, LeaderLeaseTimeout: spec.Raft,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer n.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		op, err := lease.Decode(data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var a procAnswer
		res, err := n.Apply(r.Context(), op)
		switch {
		case err != nil:
			a.Err = err.Error()
			a.Retryable = errors.Is(err, raftnode.ErrRetryable) || errors.Is(err, raftnode.ErrNotRaftLeader)
		case res.Err != nil:
			a.ResultErr = res.Err.Error()
		}
		a.Lease = res.Lease
		json.NewEncoder(w).Encode(a)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		st := procState{Leader: n.IsLeader(), Global: n.FSM().GlobalTime(), Holders: map[string]string{}}
		for _, a := range n.FSM().Applications() {
			st.Holders[a.Name] = a.Lease.Holder
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /add-voter", func(w http.ResponseWriter, r *http.Request) {
		if err := n.AddVoter(r.Context(), r.FormValue("id"), r.FormValue("raft")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()
	addrs, _ := json.Marshal(procNodeAddrs{HTTP: l.Addr().String(), Raft: n.RaftAddr()})
	tmp := filepath.Join(spec.Dir, "ctl.json.tmp")
	if err := os.WriteFile(tmp, addrs, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(tmp, filepath.Join(spec.Dir, "ctl.json")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	return 0
}

// procNode is a node process seen from the test.
type procNode struct {
	id    string
	cmd   *exec.Cmd
	waitc chan error
	log   string
	addrs procNodeAddrs
}

// procCluster is three node processes of this test binary.
type procCluster struct {
	t     *testing.T
	hc    *http.Client
	nodes []*procNode
}

func startProcNode(t *testing.T, spec procNodeSpec) *procNode {
	t.Helper()
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(spec)
	p := &procNode{id: spec.ID, log: filepath.Join(spec.Dir, "out.log"), waitc: make(chan error, 1)}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), envProcNode+"="+string(data))
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitc <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT) // a failed test may leave it stopped
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.waitc:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.waitc
			t.Errorf("%s did not exit on SIGTERM", p.id)
		}
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("=== %s output (tail):\n%s", p.id, out)
		}
	})
	testutil.WaitUntil(t, testWait, p.id+" to serve", func() bool {
		data, err := os.ReadFile(filepath.Join(spec.Dir, "ctl.json"))
		return err == nil && json.Unmarshal(data, &p.addrs) == nil
	})
	return p
}

// call makes an HTTP request of node p; trace, if set, is attached.
func (c *procCluster) call(ctx context.Context, p *procNode, method, path string, body []byte, trace *httptrace.ClientTrace) ([]byte, error) {
	if trace != nil {
		ctx = httptrace.WithClientTrace(ctx, trace)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addrs.HTTP+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return data, err
}

func (c *procCluster) state(p *procNode) (procState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st procState
	data, err := c.call(ctx, p, http.MethodGet, "/state", nil, nil)
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	return st, err
}

// leader waits for a node that leads with its time started.
func (c *procCluster) leader() *procNode {
	c.t.Helper()
	var leader *procNode
	testutil.WaitUntil(c.t, testWait, "a raft leader", func() bool {
		for _, p := range c.nodes {
			if st, err := c.state(p); err == nil && st.Leader && !st.Global.IsZero() {
				leader = p
				return true
			}
		}
		return false
	})
	return leader
}

// apply sends op to p and decodes the answer.
func (c *procCluster) apply(ctx context.Context, p *procNode, op lease.Op, trace *httptrace.ClientTrace) (procAnswer, error) {
	data, err := lease.Encode(op)
	if err != nil {
		return procAnswer{}, err
	}
	var a procAnswer
	if data, err = c.call(ctx, p, http.MethodPost, "/apply", data, trace); err == nil {
		err = json.Unmarshal(data, &a)
	}
	return a, err
}

// must applies op through whichever node leads, retrying retryable
// errors, and fails the test on any other error or a denial.
func (c *procCluster) must(op lease.Op) procAnswer {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for {
		a, err := c.apply(ctx, c.leader(), op, nil)
		switch {
		case err != nil:
			c.t.Fatalf("%s: %v", op.Type(), err)
		case a.Retryable:
			continue
		case a.Err != "" || a.ResultErr != "":
			c.t.Fatalf("%s: %s%s", op.Type(), a.Err, a.ResultErr)
		}
		return a
	}
}

// TestSIGSTOPLeaderKeepsLeases is finding 4 of issue 14 on real processes:
// three node processes of this test binary, with raft timeouts well above
// the pause and a tick that makes the slack much shorter than it (the
// regime in which a paused leader keeps its leadership and its anchor).
// Each round claims a lease for each of four applications, SIGSTOPs the
// raft leader for the pause, sends an extend of every lease to it while
// it is stopped (each call's start t0 read from the wall clock, late in
// the pause), SIGCONTs it, and then watches the leases go. The global
// time drives a lease's release, and it started at the wall time and
// never runs ahead of it; the release must never come before the wall
// time t0 + d of any successful claim or extend of that lease. Without
// the freshness gate an extend that reached the log on resume ahead of
// the advancer was applied at the pre-pause global time, and its lease
// went up to about pause - slack early.
func TestSIGSTOPLeaderKeepsLeases(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: real processes")
	}
	const (
		tick     = 50 * time.Millisecond // slack 150 ms
		raftTime = 1200 * time.Millisecond
		pause    = 500 * time.Millisecond // < raftTime, > slack
		d        = time.Second
		apps     = 4
		rounds   = 4
	)
	c := &procCluster{t: t, hc: &http.Client{Transport: &http.Transport{}}}
	defer c.hc.CloseIdleConnections()
	root := t.TempDir()
	ca := mustCA(t)
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := fmt.Sprintf("node-%d", i+1)
		c.nodes = append(c.nodes, startProcNode(t, procNodeSpec{ID: id, Dir: filepath.Join(root, id), Bootstrap: i == 0, Tick: tick, Raft: raftTime,
			CACert: string(ca.CertPEM()), CAKey: string(caKey)}))
	}
	first := c.leader()
	for _, p := range c.nodes[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		_, err := c.call(ctx, first, http.MethodPost, "/add-voter?id="+p.id+"&raft="+p.addrs.Raft, nil, nil)
		cancel()
		if err != nil {
			t.Fatalf("add voter %s: %v", p.id, err)
		}
	}
	var units []string
	for i := range apps {
		u := fmt.Sprintf("app%d/0", i)
		units = append(units, u)
		c.must(lease.RegisterUnit{Name: u, TokenHash: lease.HashToken(u)})
	}

	var kept, extended, held int
	for round := range rounds {
		// guarantee[app] is the latest wall time until which a successful
		// call promised the unit the lease.
		guarantee := map[string]time.Time{}
		for _, u := range units {
			t0 := time.Now()
			c.must(claim(u, d))
			guarantee[appOf(u)] = t0.Add(d)
		}
		leader := c.leader()
		leader.cmd.Process.Signal(syscall.SIGSTOP)
		// The pause is the stimulus: nothing here waits for an event.
		<-time.After(pause)
		type answer struct {
			unit string
			t0   time.Time
			a    procAnswer
			err  error
		}
		answers := make(chan answer, len(units))
		var wrote sync.WaitGroup
		for _, u := range units {
			wrote.Add(1)
			var once sync.Once
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(wrote.Done) }}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), testWait)
				defer cancel()
				t0 := time.Now()
				a, err := c.apply(ctx, leader, extend(u, d), trace)
				once.Do(wrote.Done) // failed before writing
				answers <- answer{u, t0, a, err}
			}()
		}
		wrote.Wait() // every extend is in the stopped leader's sockets
		leader.cmd.Process.Signal(syscall.SIGCONT)
		for range units {
			an := <-answers
			switch {
			case an.err != nil:
				t.Fatalf("round %d: extend by %s: %v", round, an.unit, an.err)
			case an.a.Retryable:
				held++ // refused after the hold: no promise made
			case an.a.Err != "" || an.a.ResultErr != "":
				t.Fatalf("round %d: extend by %s: %s%s", round, an.unit, an.a.Err, an.a.ResultErr)
			default:
				extended++
				app := appOf(an.unit)
				guarantee[app] = later(guarantee[app], an.t0.Add(d))
			}
		}
		if c.leader() == leader {
			kept++
		}

		// Watch every lease go; each may go only after its guarantee.
		gone := map[string]bool{}
		testutil.WaitUntil(t, testWait, "every lease to expire", func() bool {
			now := c.leader()
			st, err := c.state(now)
			seen := time.Now() // the answer was read by now
			if err != nil || !st.Leader {
				return false
			}
			if st.Global.After(seen) {
				t.Fatalf("round %d: %s's global time %v is ahead of the wall time by %v", round, now.id, st.Global, st.Global.Sub(seen))
			}
			for app, g := range guarantee {
				if gone[app] || st.Holders[app] != "" {
					continue
				}
				gone[app] = true
				if seen.Before(g) {
					t.Errorf("round %d: %s's lease was gone at %v, %v before the guarantee of its last extend",
						round, app, seen.Format("15:04:05.000"), g.Sub(seen))
				}
			}
			return len(gone) == len(guarantee)
		})
	}
	t.Logf("%d rounds: the leader kept its leadership across %d pauses; %d extends succeeded, %d were refused as retryable",
		rounds, kept, extended, held)
	if kept == 0 || extended == 0 {
		t.Errorf("the scenario never happened: no pause kept the leadership (%d) or no extend succeeded (%d)", kept, extended)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
