package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/bench/stats"
	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/lease/raftnode"
)

// ProfileArg is the first argument that makes the bench binary profile
// B5's load instead of running the suite (RunClaimProfile).
const ProfileArg = "profile-claims"

// RunClaimProfile profiles one claim end to end: a 1-node controller in
// this process (controller.Start: the HTTP API, JSON, auth, raft, BoltDB
// in a temporary directory), and B5's load against it over loopback (64
// clients of their own units alternating claim and extend through the
// typed client). It writes a CPU profile of the measured window and heap
// profiles taken before and after it (compare them with
// `go tool pprof -sample_index=alloc_space -base allocs-before.pprof
// allocs-after.pprof`), and prints ops/s, CPU per op and allocations per
// op of the whole process (clients included: the profiles tell the
// controller's share by package).
//
//	bench profile-claims [-seconds 10] [-batch=false] [-inflight N] [-clients N] -out DIR
func RunClaimProfile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(ProfileArg, flag.ContinueOnError)
	out := fs.String("out", "", "directory for cpu.pprof, allocs-before.pprof and allocs-after.pprof")
	seconds := fs.Int("seconds", 10, "length of the measured window")
	batch := fs.Bool("batch", true, "the controller's --batch-writes")
	inflight := fs.Int("inflight", 0, "batched entries in flight (raftnode.Config.BatchInflight; 0: the default)")
	nclients := fs.Int("clients", loadClients, "concurrent clients (1: the uncontended latency)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%s: -out DIR is required", ProfileArg)
	}
	if *nclients < 1 || *nclients > loadClients {
		return fmt.Errorf("%s: -clients must be 1 to %d", ProfileArg, loadClients)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pc, err := startProfiled(ctx, "claimprofile-", func(cfg *controller.NodeConfig) {
		cfg.NoBatching = !*batch
		cfg.Tune = func(c *raftnode.Config) { c.BatchInflight = *inflight }
	})
	if err != nil {
		return err
	}
	defer pc.close()
	c, f, admin := pc.ctrl, pc.file, pc.admin
	units, err := waitRegister(ctx, admin)
	if err != nil {
		return err
	}
	clients, err := unitClients(f, units, []string{c.APIAddr()}, nil)
	if err != nil {
		return err
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	op := func(ctx context.Context, i, seq int) error {
		u := units[i]
		if seq%2 == 0 {
			_, err := clients[i].Claim(ctx, u.app, u.unit, throughputLease)
			return err
		}
		_, err := clients[i].Extend(ctx, u.app, u.unit, throughputLease, 0)
		return err
	}
	runLoad(ctx, *nclients, 2*time.Second, op) // warm-up
	if err := writeHeap(filepath.Join(*out, "allocs-before.pprof")); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(*out, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore := processCPU()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	r := runLoad(ctx, *nclients, time.Duration(*seconds)*time.Second, op)
	pprof.StopCPUProfile()
	cpuUsed := processCPU() - cpuBefore
	runtime.ReadMemStats(&after)
	if err := writeHeap(filepath.Join(*out, "allocs-after.pprof")); err != nil {
		return err
	}
	if r.ops == 0 {
		return fmt.Errorf("no op succeeded: %v", r.firstErr)
	}
	entries, commands := c.Node().BatchStats()
	lat := stats.Summarize(r.latency)
	fmt.Printf("batch=%v clients=%d ops=%d errs=%d ops/s=%.0f p50=%.3fms p99=%.3fms cpu/op=%.1fµs allocs/op=%.0f bytes/op=%.0f commands/entry=%.1f\n",
		*batch, *nclients, r.ops, r.errs, r.opsPerSec(), lat.P50, lat.P99, float64(cpuUsed.Microseconds())/float64(r.ops),
		float64(after.Mallocs-before.Mallocs)/float64(r.ops), float64(after.TotalAlloc-before.TotalAlloc)/float64(r.ops),
		float64(commands)/max(float64(entries), 1))
	return nil
}

// waitRegister registers B5's units once the new node takes writes.
func waitRegister(ctx context.Context, admin *client.Client) ([]loadUnit, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		units, err := registerUnits(ctx, admin, "prof", loadClients, 16)
		if err == nil || time.Now().After(deadline) {
			return units, err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profiled is the 1-node controller a profile runs in this process, in a
// temporary directory, with its admin client.
type profiled struct {
	ctrl  *controller.Controller
	file  client.File // its admin client.yaml
	admin *client.Client
	dir   string
}

// startProfiled starts a profiled controller (TLS, the HTTP API, raft,
// BoltDB under a temporary directory named with prefix); tune, if set,
// edits its configuration first.
func startProfiled(ctx context.Context, prefix string, tune func(*controller.NodeConfig)) (*profiled, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	cfg := controller.NodeConfig{DataDir: dir, APIAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Clock: clock.Real, Logger: zerolog.Nop()}
	if tune != nil {
		tune(&cfg)
	}
	p := &profiled{dir: dir}
	if p.ctrl, err = controller.Start(ctx, cfg); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	path, _ := p.ctrl.ClientFile()
	if p.file, err = client.ReadFile(path); err == nil {
		p.admin, err = client.New(p.file.Config())
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// close stops the controller and removes its directory.
func (p *profiled) close() {
	if p.admin != nil {
		p.admin.Close()
	}
	p.ctrl.Close()
	os.RemoveAll(p.dir)
}
