package etcd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The load modes of etcdload.
const (
	// ModeGrantKeepAlive alternates Grant and KeepAliveOnce of a lease
	// per client: B5's claim+extend in etcd's terms.
	ModeGrantKeepAlive = "grant-keepalive"
	// ModeCAS renews a Kubernetes-style lease record per client by
	// compare-and-swap on its mod revision: every renewal a raft write.
	ModeCAS = "cas"
)

// Load is one run of etcdload: Clients goroutines sharing one clientv3
// client of Endpoints, a Warmup, then Trials trials of Window.
type Load struct {
	Endpoints []string
	Mode      string
	Clients   int
	Warmup    time.Duration
	Trials    int
	Window    time.Duration
}

// Trial is what etcdload measured in one trial (its JSON line; the
// other side is bench/etcdv3/cmd/etcdload's trialLine).
type Trial struct {
	Mode     string  `json:"mode"`
	Trial    int     `json:"trial"`
	Clients  int     `json:"clients"`
	Ops      int     `json:"ops"`
	Errs     int     `json:"errs"`
	ElapsedS float64 `json:"elapsed_s"`
	FirstErr string  `json:"first_err"`
	// LatencyUS is the latency of every successful op, in µs.
	LatencyUS []int64 `json:"latency_us"`
	// Client is the etcd client module and its version.
	Client string `json:"client"`
}

// OpsPerSec is the trial's rate of successful ops.
func (t Trial) OpsPerSec() float64 { return float64(t.Ops) / t.ElapsedS }

// LatencyMS is every successful op's latency in ms.
func (t Trial) LatencyMS() []float64 {
	out := make([]float64, len(t.LatencyUS))
	for i, us := range t.LatencyUS {
		out[i] = float64(us) / 1000
	}
	return out
}

// Run runs the load process bin with l and returns its trials; the
// process's standard error goes to errPath.
func (l Load) Run(ctx context.Context, bin, errPath string) ([]Trial, error) {
	errFile, err := os.Create(errPath)
	if err != nil {
		return nil, fmt.Errorf("cannot run etcd load: %w", err)
	}
	defer errFile.Close()
	cmd := exec.CommandContext(ctx, bin, "-endpoints", strings.Join(l.Endpoints, ","), "-mode", l.Mode,
		"-clients", strconv.Itoa(l.Clients), "-warmup", l.Warmup.String(),
		"-trials", strconv.Itoa(l.Trials), "-window", l.Window.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, errFile
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(errPath)
		return nil, fmt.Errorf("cannot run etcd load %s: %w: %s", l.Mode, err, strings.TrimSpace(string(msg)))
	}
	trials, err := ParseTrials(&out)
	if err != nil {
		return nil, err
	}
	if len(trials) != l.Trials {
		return trials, fmt.Errorf("etcd load %s reported %d trials, not %d", l.Mode, len(trials), l.Trials)
	}
	return trials, nil
}

// ParseTrials reads etcdload's output: one JSON Trial a line. A line that
// is not one, or a trial without its elapsed time, is an error.
func ParseTrials(r io.Reader) ([]Trial, error) {
	var out []Trial
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var t Trial
		if err := json.Unmarshal(line, &t); err != nil {
			return nil, fmt.Errorf("cannot parse etcd load line %d: %w", n, err)
		}
		if t.ElapsedS <= 0 {
			return nil, fmt.Errorf("cannot parse etcd load line %d: no elapsed time", n)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read etcd load output: %w", err)
	}
	return out, nil
}
