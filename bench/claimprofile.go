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
// -protos compares the client's transports in one process against one
// controller (which then also offers HTTP/2, NodeConfig.HTTP2), their
// windows alternating for -rounds rounds so that the machine's drift
// falls on each alike: h1 (the typed client as agents run it, HTTP/1.1,
// a transport per agent), h2 (HTTP/2 over TLS, a transport and so a
// connection per agent) and h2shared (every client on one HTTP/2
// transport: one connection, as etcd's clientv3 is shared). Each window
// writes its profiles with "-PROTO-ROUND" in their names.
//
//	bench profile-claims [-seconds 10] [-batch=false] [-inflight N] [-clients N] [-protos h1,h2,h2shared -rounds 2] -out DIR
func RunClaimProfile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(ProfileArg, flag.ContinueOnError)
	out := fs.String("out", "", "directory for cpu.pprof, allocs-before.pprof and allocs-after.pprof")
	seconds := fs.Int("seconds", 10, "length of the measured window")
	batch := fs.Bool("batch", true, "the controller's --batch-writes")
	inflight := fs.Int("inflight", 0, "batched entries in flight (raftnode.Config.BatchInflight; 0: the default)")
	nclients := fs.Int("clients", loadClients, "concurrent clients (1: the uncontended latency)")
	protoList := fs.String("protos", "", "transports to compare, alternating: h1, h2, h2shared (empty: h1 alone, the controller without HTTP/2)")
	rounds := fs.Int("rounds", 1, "rounds of -protos")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%s: -out DIR is required", ProfileArg)
	}
	if *nclients < 1 || *nclients > loadClients {
		return fmt.Errorf("%s: -clients must be 1 to %d", ProfileArg, loadClients)
	}
	protos, err := parseProtos(*protoList)
	if err != nil || *rounds < 1 {
		return fmt.Errorf("%s: %v (rounds %d)", ProfileArg, err, *rounds)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pc, err := startProfiled(ctx, "claimprofile-", func(cfg *controller.NodeConfig) {
		cfg.NoBatching = !*batch
		cfg.Tune = func(c *raftnode.Config) { c.BatchInflight = *inflight }
		cfg.HTTP2 = *protoList != ""
	})
	if err != nil {
		return err
	}
	defer pc.close()
	units, err := waitRegister(ctx, pc.admin)
	if err != nil {
		return err
	}
	sets := map[string][]*client.Client{}
	defer func() {
		for _, clients := range sets {
			for _, cl := range clients {
				cl.Close()
			}
		}
	}()
	for _, p := range protos {
		if sets[p], err = protoClients(p, pc.file, units, pc.ctrl.APIAddr()); err != nil {
			return err
		}
	}
	w := profileWindow{ctrl: pc.ctrl, units: units, clients: *nclients, seconds: *seconds, batch: *batch}
	for r := range *rounds {
		for _, p := range protos {
			suffix := ""
			if *protoList != "" {
				suffix = fmt.Sprintf("-%s-%d", p, r+1)
			}
			warm := time.Second
			if r == 0 {
				warm = 2 * time.Second
			}
			if err := w.run(ctx, sets[p], warm, *out, suffix, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// profileWindow is one measured window of RunClaimProfile.
type profileWindow struct {
	ctrl    *controller.Controller
	units   []loadUnit
	clients int
	seconds int
	batch   bool
}

// run warms clients up for warm, then measures and profiles a window,
// writing its profiles in dir (cpu.pprof and the heaps, with suffix
// before ".pprof"), and prints its figures, labelled with proto if set.
func (w profileWindow) run(ctx context.Context, clients []*client.Client, warm time.Duration, dir, suffix, proto string) error {
	op := func(ctx context.Context, i, seq int) error {
		u := w.units[i]
		if seq%2 == 0 {
			_, err := clients[i].Claim(ctx, u.app, u.unit, throughputLease)
			return err
		}
		_, err := clients[i].Extend(ctx, u.app, u.unit, throughputLease, 0)
		return err
	}
	runLoad(ctx, w.clients, warm, op)
	if err := writeHeap(filepath.Join(dir, "allocs-before"+suffix+".pprof")); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu"+suffix+".pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	entries0, commands0 := w.ctrl.Node().BatchStats()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpuBefore := processCPU()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	r := runLoad(ctx, w.clients, time.Duration(w.seconds)*time.Second, op)
	pprof.StopCPUProfile()
	cpuUsed := processCPU() - cpuBefore
	runtime.ReadMemStats(&after)
	if err := writeHeap(filepath.Join(dir, "allocs-after"+suffix+".pprof")); err != nil {
		return err
	}
	if r.ops == 0 {
		return fmt.Errorf("no op succeeded: %v", r.firstErr)
	}
	entries, commands := w.ctrl.Node().BatchStats()
	lat := stats.Summarize(r.latency)
	label := ""
	if proto != "" && suffix != "" {
		label = "proto=" + proto + " "
	}
	fmt.Printf("%sbatch=%v clients=%d ops=%d errs=%d ops/s=%.0f p50=%.3fms p99=%.3fms cpu/op=%.1fµs allocs/op=%.0f bytes/op=%.0f commands/entry=%.1f\n",
		label, w.batch, w.clients, r.ops, r.errs, r.opsPerSec(), lat.P50, lat.P99, float64(cpuUsed.Microseconds())/float64(r.ops),
		float64(after.Mallocs-before.Mallocs)/float64(r.ops), float64(after.TotalAlloc-before.TotalAlloc)/float64(r.ops),
		float64(commands-commands0)/max(float64(entries-entries0), 1))
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
