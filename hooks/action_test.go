package hooks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooks"
)

func actionOf(name, charmDir string) hooks.Action {
	return hooks.Action{Params: params("", charmDir), Name: name, ID: "7"}
}

// envLines returns the lines of a dumped environment that start with one
// of prefixes, sorted as env prints them.
func envLines(dump string, prefixes ...string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(dump), "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

func TestRunActionHandlerAndEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    func(t *testing.T, dir string)
		wantOut  string
		wantPath string
	}{
		{name: "dispatch", files: func(t *testing.T, dir string) {
			writeHook(t, dir, "dispatch", "echo dispatch $0; env | LC_ALL=C sort\n")
			writeHook(t, dir, "actions/greet", "echo legacy\n")
		}, wantOut: "dispatch ", wantPath: "JUJU_DISPATCH_PATH=actions/greet"},
		{name: "actions dir", files: func(t *testing.T, dir string) {
			writeHook(t, dir, "actions/greet", "echo legacy $0; env | LC_ALL=C sort\n")
		}, wantOut: "legacy ", wantPath: "JUJU_DISPATCH_PATH=actions/greet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.files(t, dir)
			r, _ := newRunner(t, hooks.Config{}, nil)
			out, err := r.RunAction(t.Context(), actionOf("greet", dir))
			if err != nil {
				t.Fatalf("RunAction: %v", err)
			}
			stdout := string(out.Stdout)
			if !strings.HasPrefix(stdout, tc.wantOut+dir) {
				t.Errorf("stdout starts %q, want %q", stdout[:min(len(stdout), 80)], tc.wantOut+dir)
			}
			got := envLines(stdout, "JUJU_ACTION", "JUJU_DISPATCH_PATH=", "JUJU_HOOK_NAME=", "JUJU_CONTEXT_ID=", "PATH=")
			want := []string{
				"JUJU_ACTION_NAME=greet", "JUJU_ACTION_TAG=action-7", "JUJU_ACTION_UUID=7",
				"JUJU_CONTEXT_ID=app/0-install-0123456789abcdef", tc.wantPath, "JUJU_HOOK_NAME=",
				"PATH=/var/lib/uniter/app-0/tools:" + hooks.SystemPath,
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("environment (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunActionResults(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "actions/fail", "echo out; echo err >&2; exit 3\n")
	writeHook(t, dir, "actions/loud", "head -c 20000 /dev/zero | tr '\\0' x\n")
	r, _ := newRunner(t, hooks.Config{}, nil)

	out, err := r.RunAction(t.Context(), actionOf("fail", dir))
	if code, ok := hooks.ExitCode(err); !ok || code != 3 || err.Error() != "exit status 3" {
		t.Fatalf("RunAction(fail) = %v (code %d %v), want exit status 3", err, code, ok)
	}
	if string(out.Stdout) != "out\n" || string(out.Stderr) != "err\n" {
		t.Errorf("output %q %q", out.Stdout, out.Stderr)
	}

	out, err = r.RunAction(t.Context(), actionOf("loud", dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stdout) != hooks.MaxCapturedBytes || !out.StdoutTruncated || out.StderrTruncated {
		t.Errorf("kept %d bytes (truncated %v), want %d and truncated", len(out.Stdout), out.StdoutTruncated, hooks.MaxCapturedBytes)
	}

	if _, err := r.RunAction(t.Context(), actionOf("nope", dir)); !errors.Is(err, hooks.ErrMissing) {
		t.Errorf("missing action: %v, want ErrMissing", err)
	}
	if _, err := r.RunAction(t.Context(), actionOf("../x", dir)); err == nil || !strings.Contains(err.Error(), "invalid action name") {
		t.Errorf("bad name: %v", err)
	}
}

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	r, clk := newRunner(t, hooks.Config{}, nil)
	c := hooks.Command{Params: params("", dir), ID: "9", Command: `echo "$JUJU_CONTEXT_ID" $(pwd); echo warn >&2; env | grep -c '^JUJU_DISPATCH_PATH=' ; exit 4`}
	out, err := r.RunCommand(t.Context(), c)
	if code, ok := hooks.ExitCode(err); !ok || code != 4 {
		t.Fatalf("RunCommand = %v, want exit 4", err)
	}
	if want := "app/0-install-0123456789abcdef " + dir + "\n0\n"; string(out.Stdout) != want || string(out.Stderr) != "warn\n" {
		t.Errorf("output %q %q, want %q and warn", out.Stdout, out.Stderr, want)
	}

	// The exec's own timeout, not the hook timeout, bounds it.
	c.Command, c.Timeout = "sleep 600", 3*time.Second
	errc := make(chan error, 1)
	go func() { _, err := r.RunCommand(t.Context(), c); errc <- err }()
	if err := clk.WaitForWaiters(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Second)
	if err := <-errc; !errors.Is(err, hooks.ErrTimeout) || err.Error() != "cannot run command: timed out after 3s" {
		t.Fatalf("RunCommand(sleep) = %v, want a timeout after 3s", err)
	}
}
