package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const module = "github.com/uniter-dev/uniter"

// goPackage is what the architecture tests read of `go list -json`.
type goPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// listPackages runs `go list -json` on the module's packages (no tests).
func listPackages(t *testing.T, patterns ...string) []goPackage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("cannot decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel is a module package's path inside the module ("" for another module).
func rel(path string) string {
	if path == module {
		return "."
	}
	r, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	return r
}

// domain reports whether a module package is part of the documented graph:
// not a test or benchmark package, not a test helper, not internal/.
func domain(r string) bool {
	if r == "" || strings.HasPrefix(r, "internal/") || strings.HasSuffix(r, "test") ||
		r == "tests" || strings.HasPrefix(r, "tests/") || r == "bench" || strings.HasPrefix(r, "bench/") {
		return false
	}
	return true
}

// importGraph is the set of "from --> to" edges between domain packages.
func importGraph(pkgs []goPackage) map[string]bool {
	edges := map[string]bool{}
	for _, p := range pkgs {
		from := rel(p.ImportPath)
		if !domain(from) {
			continue
		}
		for _, imp := range p.Imports {
			if to := rel(imp); domain(to) {
				edges[from+" --> "+to] = true
			}
		}
	}
	return edges
}

var (
	mermaidEdge = regexp.MustCompile(`^\s*(\w+)(?:\["([^"]+)"\])?\s*-->\s*(\w+)(?:\["([^"]+)"\])?\s*$`)
	mermaidNode = regexp.MustCompile(`^\s*(\w+)\["([^"]+)"\]\s*$`)
)

// documentedGraph reads the mermaid block of docs/architecture.md's
// "Packages" section: nodes are `id` or `id["package/path"]`.
func documentedGraph(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	_, after, ok := bytes.Cut(doc, []byte("\n## Packages\n"))
	if !ok {
		t.Fatal("docs/architecture.md has no \"## Packages\" section")
	}
	_, block, ok := bytes.Cut(after, []byte("```mermaid\n"))
	if !ok {
		t.Fatal("the Packages section has no mermaid block")
	}
	block, _, _ = bytes.Cut(block, []byte("```"))
	labels := map[string]string{}
	label := func(id, l string) string {
		if l != "" {
			labels[id] = l
		}
		if v, ok := labels[id]; ok {
			return v
		}
		return id
	}
	edges := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(block))
	for sc.Scan() {
		line := sc.Text()
		if m := mermaidNode.FindStringSubmatch(line); m != nil {
			label(m[1], m[2])
			continue
		}
		m := mermaidEdge.FindStringSubmatch(line)
		if m == nil {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "graph ") {
				t.Errorf("docs/architecture.md: cannot read mermaid line %q", line)
			}
			continue
		}
		edges[label(m[1], m[2])+" --> "+label(m[3], m[4])] = true
	}
	return edges
}

// TestPackageGraphIsTheDocumented: every import between domain packages
// is an arrow of docs/architecture.md's graph, and every arrow an import.
func TestPackageGraphIsTheDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedGraph(t, doc)
	actual := importGraph(listPackages(t, "./..."))
	if len(documented) < 10 {
		t.Fatalf("the documented graph has %d arrows; the mermaid block was not read", len(documented))
	}
	for _, e := range sortedKeys(actual) {
		if !documented[e] {
			t.Errorf("import %s has no arrow in docs/architecture.md", e)
		}
	}
	for _, e := range sortedKeys(documented) {
		if !actual[e] {
			t.Errorf("arrow %s in docs/architecture.md is not an import", e)
		}
	}
}

// TestLayering: the agent side never links the controller's raft or its
// store, the agent's domain packages never link Prometheus (they report to
// observers; agent/agentmetrics counts), the state machine never links
// raft, and internal/ packages know no domain.
func TestLayering(t *testing.T) {
	forbidden := []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "github.com/boltdb/bolt", module + "/lease"}
	for _, tc := range []struct {
		pkgs   []string
		banned []string
	}{
		{[]string{"./leadership", "./remotestate", "./hooktools", "./operation", "./agent"}, forbidden},
		{[]string{"./hooktools/toolclient"}, forbidden},
		{[]string{"./lease"}, forbidden[:3]},
		{[]string{"./leadership", "./remotestate", "./hooktools", "./operation"}, []string{"github.com/prometheus"}},
	} {
		for _, p := range listPackages(t, tc.pkgs...) {
			for _, dep := range p.Deps {
				for _, b := range tc.banned {
					if dep == b || strings.HasPrefix(dep, b+"/") {
						t.Errorf("%s depends on %s", p.ImportPath, dep)
					}
				}
			}
		}
	}
	for _, p := range listPackages(t, "./internal/...") {
		for _, imp := range p.Imports {
			if r := rel(imp); r != "" && !strings.HasPrefix(r, "internal/") {
				t.Errorf("%s imports the domain package %s: internal/ holds only domain-free packages", p.ImportPath, imp)
			}
		}
	}
}

// TestLayeringCheckSeesAnImport proves the checks above read real
// imports: the controller does depend on raft, and the graph does hold
// the agent's import of the tracker.
func TestLayeringCheckSeesAnImport(t *testing.T) {
	pkgs := listPackages(t, "./controller")
	if len(pkgs) != 1 || !slices.Contains(pkgs[0].Deps, "github.com/hashicorp/raft") {
		t.Fatal("go list does not show the controller depending on hashicorp/raft")
	}
	if !importGraph(listPackages(t, "./agent"))["agent --> leadership"] {
		t.Fatal("the import graph misses agent --> leadership")
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
