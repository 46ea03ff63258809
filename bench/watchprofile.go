package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/uniter-dev/uniter/bench/proc"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
)

// WatchProfileArg is the first argument that makes the bench binary
// profile B6's parked unit watches instead of running the suite
// (RunWatchProfile).
const WatchProfileArg = "profile-watches"

// RunWatchProfile measures what one parked unit watch costs a controller
// node: a 1-node controller in this process (controller.Start: TLS, the
// HTTP API, raft, BoltDB in a temporary directory) with -watchers units
// registered (three per application), and one watcher fleet in a process
// of its own (this binary as watcher-fleet, so the clients' memory is not
// counted) parking one unit watch per unit, as B6's agents do. With every
// watch parked and the process at rest (no writes), it writes heap and
// goroutine profiles and prints, per parked watch, the growth of this
// process's live heap, goroutine stacks, goroutines and RSS from before the
// watchers connected.
//
//	bench profile-watches [-watchers 4000] -out DIR
func RunWatchProfile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(WatchProfileArg, flag.ContinueOnError)
	out := fs.String("out", "", "directory for heap.pprof and goroutine.pprof")
	watchers := fs.Int("watchers", 4000, "parked unit watches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *watchers < 1 {
		return fmt.Errorf("%s: -out DIR and -watchers N ≥ 1 are required", WatchProfileArg)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pc, err := startProfiled(ctx, "watchprofile-", func(cfg *controller.NodeConfig) { cfg.MaxBlocking = *watchers + 16 })
	if err != nil {
		return err
	}
	defer pc.close()
	c, admin, dir := pc.ctrl, pc.admin, pc.dir
	path, _ := c.ClientFile()
	size := statusSize{apps: max(1, *watchers/3), units: *watchers, leaders: 0, workers: 64}
	var reg registered
	for deadline := time.Now().Add(30 * time.Second); ; {
		if reg, err = registerSpread(ctx, &Suite{}, WatchProfileArg, admin, "prof", size); err == nil || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	before := restingMem()
	unitsPath := filepath.Join(dir, "units.json")
	if err := writeFleetUnits(unitsPath, reg.all); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fctx, stopFleet := context.WithCancel(ctx)
	fleet := exec.CommandContext(fctx, self, WatchersArg, "--client-config", path, "--addrs", c.APIAddr(),
		"--units", unitsPath, "--ramp", "2s", "--out", filepath.Join(dir, "counts.json"))
	fleet.Stderr = os.Stderr
	fleet.Cancel = func() error { return fleet.Process.Signal(os.Interrupt) }
	if err := fleet.Start(); err != nil {
		stopFleet()
		return err
	}
	defer func() {
		stopFleet()
		fleet.Wait()
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		n, err := parkedWatches(ctx, admin)
		if err == nil && n >= *watchers {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d watches parked (%v)", n, *watchers, err)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	// Let the TLS handshakes' garbage go and the stacks shrink.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	after := restingMem()
	for name, file := range map[string]string{"heap": "heap.pprof", "goroutine": "goroutine.pprof"} {
		if err := writeProfile(name, filepath.Join(*out, file)); err != nil {
			return err
		}
	}
	n := float64(*watchers)
	fmt.Printf("watchers=%d heap_inuse/watch=%.0fB stack_inuse/watch=%.0fB goroutines/watch=%.2f rss/watch=%.0fB (heap before %.1f MiB, after %.1f MiB; rss before %.1f MiB, after %.1f MiB)\n",
		*watchers, float64(after.heap-before.heap)/n, float64(after.stack-before.stack)/n,
		float64(after.goroutines-before.goroutines)/n, float64(after.rss-before.rss)/n,
		float64(before.heap)/(1<<20), float64(after.heap)/(1<<20), float64(before.rss)/(1<<20), float64(after.rss)/(1<<20))
	return nil
}

// memAtRest is this process's memory after a garbage collection.
type memAtRest struct {
	heap, stack, rss int64 // bytes
	goroutines       int
}

func restingMem() memAtRest {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r := memAtRest{heap: int64(m.HeapInuse), stack: int64(m.StackInuse), goroutines: runtime.NumGoroutine()}
	if p, err := proc.Read(os.Getpid()); err == nil {
		r.rss = int64(p.RSSKB) * 1024
	}
	return r
}

// parkedWatches reads uniter_api_blocking_queries from the node's metrics.
func parkedWatches(ctx context.Context, admin *client.Client) (int, error) {
	data, err := admin.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "uniter_api_blocking_queries "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no uniter_api_blocking_queries in the metrics")
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, 0)
}
