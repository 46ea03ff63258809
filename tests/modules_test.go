package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// etcdOrGRPC reports whether module path is etcd's (go.etcd.io/etcd/...,
// or etcd's raft) or gRPC. go.etcd.io/bbolt, the raft log store's, and
// go.etcd.io/gofail, bbolt's, are neither.
func etcdOrGRPC(path string) bool {
	for _, banned := range []string{"go.etcd.io/etcd", "go.etcd.io/raft", "google.golang.org/grpc"} {
		if path == banned || strings.HasPrefix(path, banned+"/") {
			return true
		}
	}
	return false
}

func TestEtcdOrGRPC(t *testing.T) {
	for path, want := range map[string]bool{
		"go.etcd.io/etcd/client/v3":                     true,
		"go.etcd.io/etcd/server/v3":                     true,
		"go.etcd.io/etcd/api/v3":                        true,
		"go.etcd.io/etcd":                               true,
		"go.etcd.io/raft/v3":                            true,
		"google.golang.org/grpc":                        true,
		"google.golang.org/grpc/cmd/protoc-gen-go-grpc": true,
		"go.etcd.io/bbolt":                              false,
		"go.etcd.io/gofail":                             false,
		"google.golang.org/protobuf":                    false,
		"google.golang.org/grpcx":                       false,
		"github.com/hashicorp/raft":                     false,
	} {
		if got := etcdOrGRPC(path); got != want {
			t.Errorf("etcdOrGRPC(%q) = %v, want %v", path, got, want)
		}
	}
}

// goOutput runs the go command in the repository's root.
func goOutput(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// TestRootModuleHasNoEtcdOrGRPC: the product's module graph (`go list -m
// all` of the root go.mod) holds no etcd module and no gRPC; benchmark B9's
// etcd and its client live in bench/etcdv3, a module of its own.
func TestRootModuleHasNoEtcdOrGRPC(t *testing.T) {
	var paths []string
	for line := range strings.Lines(string(goOutput(t, "list", "-m", "all"))) {
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[0])
		}
	}
	for _, p := range paths {
		if etcdOrGRPC(p) {
			t.Errorf("the root module's go list -m all holds %s", p)
		}
	}
	// The listing is the real graph: it holds the raft log store's bbolt.
	if !slices.Contains(paths, module) || !slices.Contains(paths, "go.etcd.io/bbolt") {
		t.Fatalf("go list -m all lacks %s or go.etcd.io/bbolt: %v", module, paths)
	}
}

// TestBinariesLinkNoEtcdOrGRPC: uniter and uniter-hooktools, as TestMain
// built them, link no etcd or gRPC module (`go version -m`).
func TestBinariesLinkNoEtcdOrGRPC(t *testing.T) {
	for _, tc := range []struct {
		name    string
		someDep string // one module the binary does link ("" if none)
	}{
		{"uniter", "github.com/spf13/cobra"},
		{"uniter-hooktools", ""},
	} {
		bin := filepath.Join(filepath.Dir(uniterBin), tc.name)
		var mainPath string
		var deps []string
		for line := range strings.Lines(string(goOutput(t, "version", "-m", bin))) {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "path":
				mainPath = f[1]
			case len(f) >= 2 && (f[0] == "dep" || f[0] == "=>"):
				deps = append(deps, f[1])
			}
		}
		if mainPath != module+"/cmd/"+tc.name {
			t.Fatalf("go version -m %s: path %q, want %s/cmd/%s", bin, mainPath, module, tc.name)
		}
		for _, d := range deps {
			if etcdOrGRPC(d) {
				t.Errorf("%s links %s", tc.name, d)
			}
		}
		if tc.someDep != "" && !slices.Contains(deps, tc.someDep) {
			t.Fatalf("go version -m %s lists no %s: %v", bin, tc.someDep, deps)
		}
	}
}

// TestEtcdModuleIsSeparate: bench/etcdv3 is a module of its own, which is
// what keeps its etcd and gRPC out of the root module and `./...` out of
// it, and it does require what the checks above ban.
func TestEtcdModuleIsSeparate(t *testing.T) {
	data, err := os.ReadFile("../bench/etcdv3/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var required []string
	var modulePath string
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "module":
			modulePath = f[1]
		case len(f) >= 3 && f[0] == "require":
			required = append(required, f[1])
		case len(f) >= 2 && strings.HasPrefix(f[1], "v") && f[0] != "go":
			required = append(required, f[0])
		}
	}
	if modulePath != module+"/bench/etcdv3" {
		t.Errorf("bench/etcdv3/go.mod declares module %q, want %s/bench/etcdv3", modulePath, module)
	}
	for _, want := range []string{"go.etcd.io/etcd/client/v3", "go.etcd.io/etcd/server/v3", "google.golang.org/grpc"} {
		if !slices.Contains(required, want) || !etcdOrGRPC(want) {
			t.Errorf("bench/etcdv3/go.mod does not require %s, or the check would not catch it: %v", want, required)
		}
	}
	for line := range strings.Lines(string(goOutput(t, "list", "./..."))) {
		if strings.HasPrefix(strings.TrimSpace(line), module+"/bench/etcdv3") {
			t.Errorf("the root module's ./... holds %s", strings.TrimSpace(line))
		}
	}
}
