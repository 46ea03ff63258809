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
// one of B6's watcher fleets (RunWatchers) instead of the suite. Watchers
// live in processes of their own because each blocking query holds one
// HTTP/1.1 connection, so 30,000 watchers need 30,000 file descriptors,
// more than one process may have on machines that cap RLIMIT_NOFILE.
const WatchersArg = "b6-watchers"

// watchersPerProcess bounds the watchers of one fleet process.
const watchersPerProcess = 8000

// watchCounts is what a fleet reports when it stops.
type watchCounts struct {
	Returns int64 `json:"returns"`
	Busy    int64 `json:"busy"`
	Errs    int64 `json:"errs"`
	// FirstErr is the first error other than busy.
	FirstErr string `json:"first_err,omitempty"`
}

// RunWatchers runs one watcher fleet until ctx ends (SIGTERM), then
// writes its counts as JSON to the --out file. args are its flags.
func RunWatchers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(WatchersArg, flag.ContinueOnError)
	cfgPath := fs.String("client-config", "", "admin client.yaml (its token is used)")
	addrs := fs.String("addrs", "", "comma-separated controller API addresses")
	prefix := fs.String("prefix", "", "application name prefix")
	apps := fs.Int("apps", 0, "number of applications")
	from := fs.Int("from", 0, "index of this fleet's first watcher")
	count := fs.Int("count", 0, "watchers in this fleet")
	ramp := fs.Duration("ramp", time.Second, "spread the watchers' starts over this long")
	out := fs.String("out", "", "file to write the counts to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" || *addrs == "" || *prefix == "" || *apps <= 0 || *count <= 0 || *out == "" {
		return errors.New("b6-watchers wants --client-config, --addrs, --prefix, --apps, --count and --out")
	}
	f, err := client.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	counts, err := watchFleet(ctx, strings.Split(*addrs, ","), f.Token, *prefix, *apps, *from, *count, *ramp)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(counts)
	return os.WriteFile(*out, data, 0o644)
}

// watchFleet runs count watchers (watcher i watches application
// "<prefix>-a<i mod apps>") until ctx ends.
func watchFleet(ctx context.Context, addrs []string, token, prefix string, apps, from, count int, ramp time.Duration) (watchCounts, error) {
	hc := poolClient(count)
	var (
		returns, busy, errs atomic.Int64
		firstErr            atomic.Value
		wg                  sync.WaitGroup
	)
	for k := range count {
		i := from + k
		c, err := client.New(client.Config{Addresses: rotate(addrs, i), Token: token, HTTPClient: hc})
		if err != nil {
			return watchCounts{}, err
		}
		app := fmt.Sprintf("%s-a%d", prefix, i%apps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleep(ctx, time.Duration(int64(ramp)*int64(k)/int64(count))) != nil {
				return
			}
			watchLease(ctx, c, app, func(err error) {
				switch {
				case err == nil:
					returns.Add(1)
				case client.StatusCode(err) == http.StatusServiceUnavailable:
					busy.Add(1)
				default:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			})
		}()
	}
	wg.Wait()
	counts := watchCounts{Returns: returns.Load(), Busy: busy.Load(), Errs: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		counts.FirstErr = e
	}
	return counts, nil
}

// watchLease is one minion's tracker watch: a blocking query on app's
// lease, again at once after each answer and 250 ms after an error; it
// reports every outcome until ctx ends.
func watchLease(ctx context.Context, c *client.Client, app string, report func(error)) {
	var index uint64
	for ctx.Err() == nil {
		_, next, err := c.WatchLease(ctx, app, index, b6WatchWait)
		if ctx.Err() != nil {
			return
		}
		report(err)
		if err != nil {
			sleep(ctx, b6Retry)
			continue
		}
		if next < index {
			next = 0
		}
		index = next
	}
}

// fleets are B6's watcher processes.
type fleets struct {
	procs []*deploy.Process
	outs  []string
}

// startFleets starts enough watcher processes for size.watchers.
func startFleets(s *Suite, env deploy.Env, c *deploy.Cluster, size b6Size) (*fleets, error) {
	f := &fleets{}
	for from := 0; from < size.watchers; from += watchersPerProcess {
		n := min(watchersPerProcess, size.watchers-from)
		name := fmt.Sprintf("fleet-%d", len(f.procs)+1)
		out := filepath.Join(env.Dir, name+".json")
		p, err := deploy.Start(env, name, filepath.Join(env.Dir, name+".out"), s.opts.Self, WatchersArg,
			"--client-config", c.FilePath, "--addrs", strings.Join(c.Addresses(), ","), "--prefix", "bsix",
			"--apps", strconv.Itoa(size.apps), "--from", strconv.Itoa(from), "--count", strconv.Itoa(n),
			"--ramp", size.ramp.String(), "--out", out)
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

// stop stops every fleet (SIGTERM) and adds up their counts.
func (f *fleets) stop() (watchCounts, error) {
	var total watchCounts
	for i, p := range f.procs {
		p.Stop(30 * time.Second)
		data, err := os.ReadFile(f.outs[i])
		if err != nil {
			return total, fmt.Errorf("watcher fleet %d left no counts (see %s.out): %w", i+1, p.Name, err)
		}
		var c watchCounts
		if err := json.Unmarshal(data, &c); err != nil {
			return total, fmt.Errorf("cannot read watcher fleet %d counts: %w", i+1, err)
		}
		total.Returns, total.Busy, total.Errs = total.Returns+c.Returns, total.Busy+c.Busy, total.Errs+c.Errs
		if total.FirstErr == "" {
			total.FirstErr = c.FirstErr
		}
	}
	return total, nil
}

// kill kills every fleet still running.
func (f *fleets) kill() {
	for _, p := range f.procs {
		if p.Alive() {
			p.Kill()
		}
	}
}
