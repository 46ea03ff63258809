package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/report"
	"github.com/uniter-dev/uniter/bench/stats"
)

// isLeaderCalls is the length of each timed loop in the hook.
const isLeaderCalls = 1000

// runIsLeader (B3) measures is-leader from a hook of a real agent (the leader, with
// the default G of 30 s): the bench-isleader charm's config-changed times
// loops of 1,000 `is-leader` calls and of 1,000 `/bin/true` calls; then,
// while that hook is held open, the harness execs the unit's real
// tools/is-leader symlink itself with the hook's environment, timing
// every call, alternating with /bin/true.
func runIsLeader(ctx context.Context, s *Suite, env deploy.Env) ([]report.Row, error) {
	a, closeAll, err := startApp(ctx, env, "isleader", s.charm("bench-isleader"), 1, 0, false)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	u := a.Units[0]
	rounds := s.trials(3, 5)
	hold := filepath.Join(u.CharmDir(), "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		return nil, fmt.Errorf("cannot hold the hook: %w", err)
	}
	defer os.Remove(hold)
	if err := a.Cluster.Admin.SetConfig(ctx, a.Name, map[string]string{"rounds": strconv.Itoa(rounds), "calls": strconv.Itoa(isLeaderCalls)}); err != nil {
		return nil, fmt.Errorf("cannot trigger config-changed: %w", err)
	}
	s.logf("B3: hook running %d rounds of %d is-leader and %d /bin/true calls", rounds, isLeaderCalls, isLeaderCalls)
	ready := filepath.Join(u.CharmDir(), "b3.ready")
	err = deploy.Poll(ctx, "wait for the B3 hook", 10*time.Minute, 100*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(ready)
		return err == nil, nil
	})
	if err != nil {
		return nil, err
	}
	loopLeader, loopTrue, err := readIsLeaderLoops(filepath.Join(u.CharmDir(), "b3.out"))
	if err != nil {
		return nil, err
	}
	execLeader, execTrue, err := isLeaderExec(ctx, u, pick(s, 300, 1000))
	if err != nil {
		return nil, err
	}
	if err := os.Remove(hold); err != nil {
		return nil, err
	}
	if _, err := a.Settle(ctx, settleTimeout); err != nil {
		return nil, err
	}
	return isLeaderRows(loopLeader, loopTrue, execLeader, execTrue), nil
}

// isLeaderFacts are B3's setup and the loop's added cost per call.
type isLeaderFacts struct {
	Calls      int     `json:"calls"`
	GuaranteeS float64 `json:"g_s"`
	AddedMS    float64 `json:"added_ms"`
}

// isLeaderRows are B3's rows: per-call ms in the hook's loops (one value
// per round) and exec'd from Go (one per call), each against /bin/true.
func isLeaderRows(loopLeader, loopTrue, execLeader, execTrue []float64) []report.Row {
	trueLoop := stats.Summarize(loopTrue).Median
	trueExec := stats.Summarize(execTrue).Median
	facts := isLeaderFacts{Calls: isLeaderCalls, GuaranteeS: agent.DefaultGuarantee.Seconds(),
		AddedMS: stats.Summarize(loopLeader).Median - trueLoop}
	return []report.Row{
		newRow("loop_per_call", "ms", loopLeader).WithBaseline("/bin/true loop", trueLoop).WithFacts(facts),
		newRow("exec_per_call", "ms", execLeader).WithPercentiles(execLeader).WithBaseline("/bin/true exec", trueExec),
	}
}

// readIsLeaderLoops reads the hook's b3.out: per-call ms of each round's
// is-leader and /bin/true loops.
func readIsLeaderLoops(path string) (leader, truth []float64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the B3 hook's timings: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 5 {
			return nil, nil, fmt.Errorf("cannot read the B3 hook's timings: bad line %q", line)
		}
		if f[4] != "True" {
			return nil, nil, fmt.Errorf("is-leader answered %q in the leader's hook", f[4])
		}
		var t [3]float64
		for i := range t {
			if t[i], err = strconv.ParseFloat(f[i+1], 64); err != nil {
				return nil, nil, fmt.Errorf("cannot read the B3 hook's timings: %w", err)
			}
		}
		leader = append(leader, (t[1]-t[0])*1000/isLeaderCalls)
		truth = append(truth, (t[2]-t[1])*1000/isLeaderCalls)
	}
	if len(leader) == 0 {
		return nil, nil, errors.New("the B3 hook timed no rounds")
	}
	return leader, truth, nil
}

// isLeaderExec execs the unit's tools/is-leader n times with the held hook's
// environment, alternating with /bin/true; it returns per-call ms.
func isLeaderExec(ctx context.Context, u *deploy.Unit, n int) (leader, truth []float64, err error) {
	raw, err := os.ReadFile(filepath.Join(u.CharmDir(), "hook.env"))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the hook's environment: %w", err)
	}
	var env []string
	for kv := range bytes.SplitSeq(bytes.TrimSuffix(raw, []byte{0}), []byte{0}) {
		env = append(env, string(kv))
	}
	tool := filepath.Join(agent.ToolsDir(u.Dir), "is-leader")
	for range n {
		d, err := timeExec(ctx, tool, env, u.CharmDir(), "True\n")
		if err != nil {
			return nil, nil, err
		}
		leader = append(leader, d)
		if d, err = timeExec(ctx, "/bin/true", env, u.CharmDir(), ""); err != nil {
			return nil, nil, err
		}
		truth = append(truth, d)
	}
	return leader, truth, nil
}

// timeExec runs path once and returns its wall time in ms; its output
// must be want.
func timeExec(ctx context.Context, path string, env []string, dir, want string) (float64, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Env, cmd.Dir = env, dir
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil || string(out) != want {
		return 0, fmt.Errorf("cannot run %s: output %q, %v", path, out, err)
	}
	return float64(d) / 1e6, nil
}
