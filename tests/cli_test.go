package tests

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/version"
)

type result struct {
	code           int
	stdout, stderr string
}

// runUniter runs the built binary with args (runBin).
func runUniter(t *testing.T, args ...string) result {
	t.Helper()
	return runBin(t, uniterBin, args...)
}

// runUniterEnv is runUniter with env added to the environment.
func runUniterEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinEnv(t, uniterBin, env, args...)
}

// TestCLIBadInput: wrong arguments exit 2 with usage; an unreachable
// controller and a wrong token are one-line runtime errors (exit 1).
func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "dead.yaml")
	// A client config naming a port nothing listens on.
	addr := freePort(t)
	writeClientFile(t, dead, addr, strings.Repeat("a", 64), "sha256:"+strings.Repeat("0", 64))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "Usage:"},
		{[]string{"status", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"status", "--format", "xml"}, 2, "--format must be table, json or yaml"},
		{[]string{"status", "extra"}, 2, "Usage:"},
		{[]string{"leadership", "show"}, 2, "want APP"},
		{[]string{"leadership", "pin", "app"}, 2, "--entity and --reason are required"},
		{[]string{"leadership", "unpin", "app"}, 2, "--entity is required"},
		{[]string{"config", "set", "app"}, 2, "want APP KEY=VALUE"},
		{[]string{"config", "set", "app", "novalue"}, 2, `expected KEY=VALUE, got "novalue"`},
		{[]string{"resolved"}, 2, "want UNIT"},
		{[]string{"logs", "notaunit"}, 2, "bad unit name"},
		{[]string{"logs", "app/0", "--level", "loud"}, 2, "--level must be"},
		{[]string{"up"}, 2, "want exactly one CHARM_DIR"},
		{[]string{"up", ".", "--units", "0"}, 2, "--units must be between 1 and 50"},
		{[]string{"agent"}, 2, "--agent-dir is required"},
		{[]string{"unit", "add", "app"}, 2, "Usage:"},
		{[]string{"status", "--client-config", dead}, 1, "cannot reach controller at " + addr},
		{[]string{"leadership", "show", "app", "--client-config", dead}, 1, addr},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := runUniter(t, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d mentioning %q", res.code, res.stderr, tc.code, tc.want)
			}
			if tc.code == 1 && strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
				t.Fatalf("runtime error is not one line:\n%s", res.stderr)
			}
		})
	}
}

// TestCLIWrongToken: a token the controller does not know is refused with a
// one-line "unauthorized".
func TestCLIWrongToken(t *testing.T) {
	c := startCluster(t, 1)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeClientFile(t, bad, c.nodes[0].api, strings.Repeat("b", 64), c.fingerprint())
	for _, args := range [][]string{{"status"}, {"leadership", "show", "app"}, {"config", "get", "app"}} {
		res := runUniter(t, append(args, "--client-config", bad)...)
		if res.code != 1 || strings.TrimSpace(res.stderr) != "ERROR unauthorized" {
			t.Fatalf("%v with a wrong token: exit %d, stderr %q; want exit 1 and ERROR unauthorized", args, res.code, res.stderr)
		}
	}
}

// writeClientFile writes a client config naming addr, pinning the CA by
// its fingerprint.
func writeClientFile(t *testing.T, path, addr, token, fingerprint string) {
	t.Helper()
	ctl := client.FileController{Addresses: []string{addr}, CAFingerprint: fingerprint}
	if err := client.WriteFile(path, client.File{Version: 1, Controller: ctl, Token: token}); err != nil {
		t.Fatal(err)
	}
}

// TestVersionJSON: `uniter version --format json` reports this build's
// version, its source revision and the protocol range it speaks.
func TestVersionJSON(t *testing.T) {
	r := runUniter(t, "version", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v struct {
		Version     string `json:"version"`
		Commit      string `json:"commit"`
		ProtocolMin uint64 `json:"protocol_min"`
		ProtocolMax uint64 `json:"protocol_max"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	lo, hi, err := version.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != version.Version || v.ProtocolMin != lo || v.ProtocolMax != hi || v.Commit == "" {
		t.Errorf("version %+v, want version %s protocol %d..%d and a commit", v, version.Version, lo, hi)
	}
	if r := runUniter(t, "version", "--format", "xml"); r.code != 2 {
		t.Errorf("unknown format: exit %d, want 2", r.code)
	}
}

// TestCompletionListsDeployedApplications: the shell completion of
// `leadership show` offers the controller's applications (prefix-filtered),
// and that of `resolved` its units.
func TestCompletionListsDeployedApplications(t *testing.T) {
	c := startCluster(t, 1)
	for _, unit := range []string{"db/0", "db/1", "web/0"} {
		if err := c.client().RegisterUnit(t.Context(), unit, "token-of-"+strings.ReplaceAll(unit, "/", "-")+"-0123456789", nil); err != nil {
			t.Fatal(err)
		}
	}
	lines := func(args ...string) []string {
		// The word to complete comes last, after the flags.
		full := append([]string{"__complete"}, args[:len(args)-1]...)
		full = append(full, "--client-config", c.clientFile, args[len(args)-1])
		r := runUniter(t, full...)
		if r.code != 0 {
			t.Fatalf("__complete %v: exit %d: %s", args, r.code, r.stderr)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") { // the directive line
				out = append(out, l)
			}
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"leadership", "show", ""}, []string{"db", "web"}},
		{[]string{"leadership", "show", "w"}, []string{"web"}},
		{[]string{"config", "get", ""}, []string{"db", "web"}},
		{[]string{"resolved", "db/"}, []string{"db/0", "db/1"}},
		{[]string{"leadership", "show", "db", ""}, nil},
	} {
		if got := lines(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("__complete %q = %q, want %q", tc.args, got, tc.want)
		}
	}
}
