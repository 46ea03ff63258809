// Command bench runs uniter's benchmark suite (`make bench`) and writes
// bench/results/latest.json and latest.md. BENCH_QUICK=1 (or -quick) runs
// the short pass, BENCH_ONLY=B1,B5 (or -only) a subset, and -render only
// renders latest.md again from latest.json (after a change of
// bench/report/template.md.tmpl). Run as `bench watcher-fleet ...` it is
// one fleet of B6's watching minions instead; as `bench profile-claims
// -out DIR` it profiles B5's load on an in-process controller. Benchmark B9's etcd server,
// load and election candidates are binaries of the separate module
// bench/etcdv3, which the suite builds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/uniter-dev/uniter/bench"
	"github.com/uniter-dev/uniter/bench/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == bench.WatchersArg:
		err = bench.RunWatchers(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == bench.ProfileArg:
		err = bench.RunClaimProfile(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == bench.WatchProfileArg:
		err = bench.RunWatchProfile(ctx, os.Args[2:])
	default:
		err = suite(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func suite(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0", "the short pass (also BENCH_QUICK=1)")
	only := fs.String("only", os.Getenv("BENCH_ONLY"), "comma-separated benchmark ids to run, e.g. B1,B5 (also BENCH_ONLY)")
	out := fs.String("out", "", "results directory (default bench/results of the module)")
	work := fs.String("work", "", "work directory for the run's data (default a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the temporary work directory")
	b6 := fs.String("b6", os.Getenv("BENCH_B6"), "override B6's load: APPS/WATCHERS/WINDOW, e.g. 10000/3000/1m (also BENCH_B6)")
	render := fs.Bool("render", false, "run nothing: render latest.md again from latest.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ids, err := bench.ParseOnly(*only)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results")
	}
	if *render {
		return rerender(*out)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the bench binary: %w", err)
	}
	opts := bench.Options{Quick: *quick, Only: ids, Root: root, Out: *out, Work: *work, Keep: *keep, Self: self, Log: os.Stderr, B6: *b6}
	r, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s and latest.json (%d rows, %s)\n",
		filepath.Join(opts.Out, "latest.md"), len(r.Rows), r.Finished.Sub(r.Started).Round(1e9))
	return ctx.Err()
}

// rerender writes dir's latest.md again from its latest.json.
func rerender(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		return fmt.Errorf("cannot read results: %w", err)
	}
	md, renderErr := report.RenderJSON(data)
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("cannot write latest.md: %w", err)
	}
	if renderErr != nil {
		return renderErr
	}
	fmt.Fprintf(os.Stderr, "wrote %s from latest.json\n", filepath.Join(dir, "latest.md"))
	return nil
}

// moduleRoot finds the directory of uniter's go.mod from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/uniter-dev/uniter\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find uniter's go.mod: run from inside the repository")
		}
		dir = parent
	}
}
