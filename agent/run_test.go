package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/testutil"
	"github.com/uniter-dev/uniter/lease"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

const (
	testUnit  = "app/0"
	unitToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// installOutput is what the test charm's install hook prints.
	installOutput = "installing app"
)

// liveAgent is an agent run by agent.Run against a real, in-process
// controller node.
//
// These tests poll with deadlines on real time, unlike the loop tests'
// synctest bubbles: the agent runs real hook processes (the charm's
// /bin/sh hooks) and talks to a raft node over real sockets. A goroutine
// waiting on a child process or a socket is not durably blocked, so
// synctest.Wait could not tell a settled agent from one whose hook is
// still running, and a hook process lives outside the bubble's fake time.
type liveAgent struct {
	t     *testing.T
	ctrl  *controller.Controller
	admin *client.Client
	dir   string
	log   *testutil.Buffer
	stop  context.CancelFunc
	done  chan error
	// returned and err are Run's outcome, once wait has seen it.
	returned bool
	err      error
}

// newLiveAgent starts a controller, registers testUnit, writes its agent
// directory with a small charm, and calls prepare on the directory before
// the agent starts.
func newLiveAgent(t *testing.T, prepare func(dir string)) *liveAgent {
	t.Helper()
	return newLiveAgentWith(t, prepare, nil)
}

// newLiveAgentWith is newLiveAgent with a notifier for agent.Deps.
func newLiveAgentWith(t *testing.T, prepare func(dir string), n agent.Notifier) *liveAgent {
	t.Helper()
	ctrl, err := controller.Start(t.Context(), controller.NodeConfig{
		DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Clock: clock.Real,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Tune:   func(c *raftnode.Config) { c.Tick = 100 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &liveAgent{t: t, ctrl: ctrl, dir: t.TempDir(), log: &testutil.Buffer{}}
	t.Cleanup(func() { a.ctrl.Close() })
	path, _ := ctrl.ClientFile()
	f, err := client.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.admin, err = client.New(f.Config()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 20*time.Second, "the controller to accept writes", func() bool {
		return ctrl.Node().IsLeader() && !ctrl.Node().FSM().GlobalTime().IsZero()
	})
	if err := a.admin.RegisterUnit(t.Context(), testUnit, unitToken, nil); err != nil {
		t.Fatal(err)
	}
	charmDir := filepath.Join(a.dir, "charm")
	writeFileMode(t, filepath.Join(charmDir, "metadata.yaml"), "name: app\n", 0o644)
	writeFileMode(t, filepath.Join(charmDir, "hooks", "install"), "#!/bin/sh\necho "+installOutput+"\n", 0o755)
	err = agent.WriteConfig(a.dir, agent.Config{
		Unit: testUnit, Controller: agent.Controller{Addresses: []string{ctrl.APIAddr()}, Token: unitToken, CACert: string(ctrl.CACert())},
		MachineLock: filepath.Join(t.TempDir(), "machine-lock"), StopTimeout: agent.Duration(10 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(a.dir)
	}
	cfg, err := agent.ReadConfig(a.dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop, a.done = cancel, make(chan error, 1)
	t.Cleanup(cancel)
	go func() {
		a.done <- agent.Run(ctx, agent.Deps{AgentDir: a.dir, Config: cfg, Clock: clock.Real, Logger: zerolog.New(a.log), Notifier: n})
	}()
	return a
}

func writeFileMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// waitIdle waits until the agent has run its hooks, holds the lease and
// reported itself idle.
func (a *liveAgent) waitIdle() {
	a.t.Helper()
	testutil.WaitUntil(a.t, 30*time.Second, "the agent to lead and be idle", func() bool {
		l, _ := a.ctrl.Node().FSM().Lease("app")
		u, _ := a.ctrl.Node().FSM().Unit(testUnit)
		return l.Holder == testUnit && u.Agent.Status == agent.StatusIdle
	})
}

// wait waits for Run to return, and returns its error (again, if it
// has returned already).
func (a *liveAgent) wait() error {
	a.t.Helper()
	if a.returned {
		return a.err
	}
	select {
	case a.err = <-a.done:
		a.returned = true
		return a.err
	case <-time.After(30 * time.Second):
		a.t.Fatal("agent.Run did not return")
		return nil
	}
}

// closeAll stops the controller and the admin client, so that no
// goroutine of the test should be left.
func (a *liveAgent) closeAll() {
	a.admin.Close()
	if err := a.ctrl.Close(); err != nil {
		a.t.Errorf("cannot close controller: %v", err)
	}
}

// TestRunStartsAndStopsEverything runs a whole agent against a real
// controller and ends it each way it can end. Every goroutine it started
// must be gone when Run returns (the controller's too, once closed).
func TestRunStartsAndStopsEverything(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		// end ends the running agent (nil: it fails to start by itself).
		end func(t *testing.T, a *liveAgent)
		// check checks Run's error and what the agent left behind.
		check func(t *testing.T, a *liveAgent, err error)
	}{{
		name: "stopped: the lease is kept and renewed",
		end: func(t *testing.T, a *liveAgent) {
			before, _ := a.ctrl.Node().FSM().Lease("app")
			testutil.WaitUntil(t, 10*time.Second, "the controller's time to move", func() bool {
				return a.ctrl.Node().FSM().GlobalTime().After(before.Start)
			})
			a.stop()
			a.wait() // the row's check sees the same error again
			// The leader may answer the renewal from memory and write it
			// to the log before its next time advance: a tick later.
			var after lease.Lease
			testutil.WaitUntil(t, 10*time.Second, "the renewal in the log", func() bool {
				after, _ = a.ctrl.Node().FSM().Lease("app")
				return after.Holder != testUnit || after.Term != before.Term || after.Start.After(before.Start)
			})
			if after.Holder != testUnit || after.Term != before.Term || !after.Start.After(before.Start) {
				t.Errorf("lease after a graceful stop %+v, before %+v: want it kept and renewed", after, before)
			}
		},
		check: func(t *testing.T, a *liveAgent, err error) {
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			checkHookOutput(t, a.log.String())
		},
	}, {
		name: "removed: the agent deregisters the unit",
		end: func(t *testing.T, a *liveAgent) {
			if err := a.admin.RemoveUnit(t.Context(), testUnit); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, a *liveAgent, err error) {
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if _, ok := a.ctrl.Node().FSM().Unit(testUnit); ok {
				t.Error("the unit is still registered")
			}
		},
	}, {
		name: "deregistered under it: the watcher fails",
		end: func(t *testing.T, a *liveAgent) {
			if err := a.admin.DeregisterUnit(t.Context(), testUnit); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, a *liveAgent, err error) {
			if !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, api.ErrUnknownUnit) {
				t.Fatalf("Run = %v, want the controller's refusal", err)
			}
			if !strings.HasPrefix(err.Error(), "cannot run ") {
				t.Errorf("Run = %q, want it to name the worker that failed", err)
			}
		},
	}, {
		name: "the hook-tool socket is taken: the started workers stop",
		prepare: func(t *testing.T, dir string) {
			writeFileMode(t, agent.SocketPath(dir), "not a socket", 0o600)
		},
		check: func(t *testing.T, a *liveAgent, err error) {
			if err == nil || !strings.Contains(err.Error(), "is not a socket") {
				t.Fatalf("Run = %v, want the tool server's failure", err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			var prepare func(string)
			if tc.prepare != nil {
				prepare = func(dir string) { tc.prepare(t, dir) }
			}
			a := newLiveAgent(t, prepare)
			if tc.end != nil {
				a.waitIdle()
				tc.end(t, a)
			}
			err := a.wait()
			tc.check(t, a, err)
			a.closeAll()
			goleak.VerifyNone(t, ignore)
		})
	}
}

// checkHookOutput checks that the line of hook output in log names the
// unit once: one logger context, not two.
func checkHookOutput(t *testing.T, log string) {
	t.Helper()
	for line := range strings.Lines(log) {
		if !strings.Contains(line, installOutput) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["message"] != "hook output" {
			continue
		}
		if n := strings.Count(line, `"unit":`); n != 1 || m["unit"] != testUnit || m["hook"] != "install" {
			t.Errorf("hook output line %s: unit appears %d times, want once (and hook install)", strings.TrimSpace(line), n)
		}
		return
	}
	t.Errorf("no hook output line in the agent's log:\n%s", log)
}
