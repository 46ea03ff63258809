package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uniter-dev/uniter/bench/deploy"
	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/controller/client"
)

// WatchersArg is the first argument that makes the harness binary run as
// one of B6's watcher fleets (RunWatchers) instead of the suite. Each
// watcher is one simulated agent: a registered unit with its own token,
// holding the one blocking query a unit agent parks on the controller,
// its unit's watch (GET /v1/units/{app}/{n}/watch, which carries the
// lease too). Watchers live in processes of their own because each
// blocking query holds one HTTP/1.1 connection, so 30,000 watchers need
// 30,000 file descriptors, more than one process may have on machines
// that cap RLIMIT_NOFILE.
const WatchersArg = "watcher-fleet"

// watchersPerProcess bounds the watchers of one fleet process.
const watchersPerProcess = 8000

// countsEvery is how often a fleet writes its running counts.
const countsEvery = 250 * time.Millisecond

// watchCounts are a fleet's running counts since it started, which it
// writes every countsEvery and when it stops.
type watchCounts struct {
	At      time.Time `json:"at"`
	Returns int64     `json:"returns"`
	Busy    int64     `json:"busy"`
	Errs    int64     `json:"errs"`
	// FirstErr is the first error other than busy.
	FirstErr string `json:"first_err,omitempty"`
}

// RunWatchers runs one watcher fleet until ctx ends (SIGTERM), writing
// its running counts as JSON to the --out file every countsEvery (through
// a rename, so a reader never sees half a file) and when it stops. args
// are its flags.
func RunWatchers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(WatchersArg, flag.ContinueOnError)
	cfgPath := fs.String("client-config", "", "admin client.yaml (for the CA it pins; each watcher uses its unit's token)")
	addrs := fs.String("addrs", "", "comma-separated controller API addresses")
	unitsPath := fs.String("units", "", "JSON file of the fleet's units and their tokens")
	from := fs.Int("from", 0, "index of this fleet's first watcher")
	ramp := fs.Duration("ramp", time.Second, "spread the watchers' starts over this long")
	out := fs.String("out", "", "file to write the counts to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" || *addrs == "" || *unitsPath == "" || *out == "" {
		return errors.New("watcher-fleet wants --client-config, --addrs, --units and --out")
	}
	f, err := client.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	units, err := readFleetUnits(*unitsPath)
	if err != nil {
		return err
	}
	var counts fleetCounts
	if err := counts.write(*out); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		done <- watchFleet(ctx, f, strings.Split(*addrs, ","), units, *from, *ramp, &counts)
	}()
	tick := time.NewTicker(countsEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			return counts.write(*out)
		case <-tick.C:
			if err := counts.write(*out); err != nil {
				return err
			}
		}
	}
}

// fleetCounts are a fleet's running counts.
type fleetCounts struct {
	returns, busy, errs atomic.Int64
	firstErr            atomic.Value // string
}

// add counts one answer of a watch.
func (c *fleetCounts) add(err error) {
	switch {
	case err == nil:
		c.returns.Add(1)
	case client.StatusCode(err) == http.StatusServiceUnavailable:
		c.busy.Add(1)
	default:
		c.errs.Add(1)
		c.firstErr.CompareAndSwap(nil, err.Error())
	}
}

// write writes the counts now to path, through a temporary file and a
// rename.
func (c *fleetCounts) write(path string) error {
	w := watchCounts{At: time.Now(), Returns: c.returns.Load(), Busy: c.busy.Load(), Errs: c.errs.Load()}
	if e, ok := c.firstErr.Load().(string); ok {
		w.FirstErr = e
	}
	data, _ := json.Marshal(w)
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("cannot write counts: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("cannot write counts: %w", err)
	}
	return nil
}

// readCounts reads the counts a fleet wrote to path.
func readCounts(path string) (watchCounts, error) {
	var w watchCounts
	data, err := os.ReadFile(path)
	if err != nil {
		return w, fmt.Errorf("cannot read watcher counts: %w", err)
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return w, fmt.Errorf("cannot read watcher counts %s: %w", path, err)
	}
	return w, nil
}

// fleetUnit is one watcher's unit, as the harness hands it to a fleet.
type fleetUnit struct {
	Unit  string `json:"unit"`
	Token string `json:"token"`
}

// writeFleetUnits writes units (with their tokens: 0600) for a fleet.
func writeFleetUnits(path string, units []loadUnit) error {
	out := make([]fleetUnit, len(units))
	for i, u := range units {
		out[i] = fleetUnit{Unit: u.unit, Token: u.token}
	}
	data, _ := json.Marshal(out)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write the fleet's units: %w", err)
	}
	return nil
}

// readFleetUnits reads what writeFleetUnits wrote.
func readFleetUnits(path string) ([]fleetUnit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the fleet's units: %w", err)
	}
	var units []fleetUnit
	if err := json.Unmarshal(data, &units); err != nil {
		return nil, fmt.Errorf("cannot read the fleet's units %s: %w", path, err)
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("cannot read the fleet's units %s: none", path)
	}
	return units, nil
}

// watchFleet runs one simulated agent per unit (watcher k of the fleet
// is watcher from+k of B6, which picks its first node) until ctx ends,
// counting their answers.
func watchFleet(ctx context.Context, f client.File, addrs []string, units []fleetUnit, from int, ramp time.Duration, counts *fleetCounts) error {
	var wg sync.WaitGroup
	for k, u := range units {
		// A transport of its own, as each agent has: watchers sharing one
		// pool would race for its idle connections and leave the nodes
		// holding idle connections no agent would open.
		hc, err := poolClient(f, 1)
		if err != nil {
			return err
		}
		cfg := f.Config()
		cfg.Addresses, cfg.Token, cfg.HTTPClient = rotate(addrs, from+k), u.Token, hc
		c, err := client.New(cfg)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleep(ctx, time.Duration(int64(ramp)*int64(k)/int64(len(units)))) != nil {
				return
			}
			watchUnit(ctx, c, u.Unit, counts.add)
		}()
	}
	wg.Wait()
	return nil
}

// watchUnit is one agent's watch (agent/stream.go's run): a blocking
// query on the unit's watch with the agent's wait, again at once after
// each answer, and after an error a pause that starts at the agent's
// retry and doubles to its cap; it reports every outcome until ctx ends.
func watchUnit(ctx context.Context, c *client.Client, unit string, report func(error)) {
	var index uint64
	delay := agentWatchRetry
	for ctx.Err() == nil {
		w, err := c.WatchUnitStream(ctx, unit, index, scaleWatchWait)
		if ctx.Err() != nil {
			return
		}
		if err == nil && !w.LeaseSent {
			err = fmt.Errorf("the watch of %s carried no lease", unit)
		}
		report(err)
		if err != nil {
			sleep(ctx, delay)
			delay = min(2*delay, agentWatchMaxRetry)
			continue
		}
		delay = agentWatchRetry
		next := w.Index
		if next < index {
			next = 0
		}
		index = next
	}
}

// fleets are B6's watcher processes and the files of their counts.
type fleets struct {
	procs []*deploy.Process
	outs  []string
}

// startFleets starts enough watcher processes for size.watchers, watcher
// i watching units[i].
func startFleets(s *Suite, env deploy.Env, c *deploy.Cluster, size scaleSize, units []loadUnit) (*fleets, error) {
	f := &fleets{}
	for from := 0; from < size.watchers; from += watchersPerProcess {
		n := min(watchersPerProcess, size.watchers-from)
		name := fmt.Sprintf("fleet-%d", len(f.procs)+1)
		out := filepath.Join(env.Dir, name+".json")
		unitsPath := filepath.Join(env.Dir, name+".units.json")
		if err := writeFleetUnits(unitsPath, units[from:from+n]); err != nil {
			f.kill()
			return nil, err
		}
		p, err := deploy.Start(env, name, filepath.Join(env.Dir, name+".out"), s.opts.Self, WatchersArg,
			"--client-config", c.FilePath, "--addrs", strings.Join(c.Addresses(), ","), "--units", unitsPath,
			"--from", strconv.Itoa(from), "--ramp", size.ramp.String(), "--out", out)
		if err != nil {
			f.kill()
			return nil, err
		}
		f.procs, f.outs = append(f.procs, p), append(f.outs, out)
	}
	return f, nil
}

func (f *fleets) pids() []int {
	var out []int
	for _, p := range f.procs {
		out = append(out, p.PID())
	}
	return out
}

// cpu is the fleets' CPU over the sampled window, in % of a core.
func (f *fleets) cpu(s *proc.Sampler) float64 {
	var sum float64
	for _, p := range f.procs {
		sum += proc.Summarize(s.Samples(p.PID())).CPUPercent
	}
	return sum
}

// counts reads every fleet's latest running counts.
func (f *fleets) counts() ([]watchCounts, error) {
	out := make([]watchCounts, len(f.procs))
	for i, p := range f.procs {
		if !p.Alive() {
			return nil, fmt.Errorf("watcher fleet %d exited (see %s.out): %v", i+1, p.Name, p.Err())
		}
		var err error
		if out[i], err = readCounts(f.outs[i]); err != nil {
			return nil, fmt.Errorf("watcher fleet %d: %w", i+1, err)
		}
	}
	return out, nil
}

// watchRates is what the watchers did between two readings of the fleets'
// counts.
type watchRates struct {
	answers, busy float64 // per second
	errs          int64
	firstErr      string // of a fleet with errors in between, its first ever
}

// watchDelta is what the watchers did between the readings before and
// after (one per fleet, in the same order): each fleet's rates over the
// span between its own two writes, added up.
func watchDelta(before, after []watchCounts) watchRates {
	var w watchRates
	for i := range min(len(before), len(after)) {
		b, a := before[i], after[i]
		secs := a.At.Sub(b.At).Seconds()
		if secs <= 0 {
			continue
		}
		w.answers += float64(a.Returns-b.Returns) / secs
		w.busy += float64(a.Busy-b.Busy) / secs
		w.errs += a.Errs - b.Errs
		if w.firstErr == "" && a.Errs > b.Errs {
			w.firstErr = a.FirstErr
		}
	}
	return w
}

// kill kills every fleet still running.
func (f *fleets) kill() {
	for _, p := range f.procs {
		if p.Alive() {
			p.Kill()
		}
	}
}
