package hooktools_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// logBuffer collects a server's JSON log lines; safe for concurrent use.
type logBuffer struct{ testutil.Buffer }

// entries decodes every log line.
func (l *logBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// shortTempDir is a temporary directory with a short path: unix socket
// paths are limited to 108 bytes, too few for t.TempDir's long names.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ht")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testServer is a Server on a real socket whose log is captured.
type testServer struct {
	*hooktools.Server
	sock string
	logs *logBuffer
}

type serverOpts struct {
	level  zerolog.Level
	limits hooktools.Limits
	uids   []uint32 // non-nil: NewServerAllowingUIDs
	dir    string   // base directory; shortTempDir when empty
	obs    hooktools.Observer
}

func startServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	if o.dir == "" {
		o.dir = shortTempDir(t)
	}
	logs := &logBuffer{}
	log := zerolog.New(logs).Level(o.level)
	if tt, ok := t.(*testing.T); ok {
		log = zerolog.New(zerolog.MultiLevelWriter(logs, zerolog.NewTestWriter(tt))).Level(o.level)
	}
	cfg := hooktools.ServerConfig{
		SocketPath: filepath.Join(o.dir, "run", "agent.sock"),
		Logger:     log, Clock: clock.Real, Limits: o.limits, Observer: o.obs,
	}
	var srv *hooktools.Server
	var err error
	if o.uids != nil {
		srv, err = hooktools.NewServerAllowingUIDs(cfg, o.uids...)
	} else {
		srv, err = hooktools.NewServer(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testServer{Server: srv, sock: cfg.SocketPath, logs: logs}
}

// testHook is a registered context and its fake backend.
type testHook struct {
	srv     *testServer
	backend *hooktoolstest.Backend
	id      string
	done    func()
}

// defaultContext is the snapshot tool tests run against.
func defaultContext(b hooktools.Backend) *hooktools.HookContext {
	return &hooktools.HookContext{
		Unit: "app/0", App: "app", Hook: "config-changed",
		Config:         map[string]any{"name": "hello", "port": int64(8080), "ratio": 0.5, "debug": false},
		ConfigKeys:     []string{"debug", "name", "port", "ratio", "token"},
		LeaderSettings: map[string]string{"a": "1", "b": "two words"},
		Backend:        b,
	}
}

// register registers hc (defaultContext with a leader backend when nil).
func (s *testServer) register(t testing.TB, hc *hooktools.HookContext) *testHook {
	t.Helper()
	if hc == nil {
		hc = defaultContext(hooktoolstest.NewBackend(true))
	}
	id, done, err := s.Register(hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	b, _ := hc.Backend.(*hooktoolstest.Backend)
	return &testHook{srv: s, backend: b, id: id, done: done}
}

// result is what a tool printed and returned.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run calls ClientMain in-process for argv with the hook's environment.
func (h *testHook) run(t testing.TB, stdin io.Reader, argv ...string) result {
	t.Helper()
	return runClient(stdin, map[string]string{
		hooktools.EnvContextID:     h.id,
		hooktools.EnvSocketAddress: h.srv.sock,
		hooktools.EnvSocketNetwork: "unix",
	}, argv...)
}

func runClient(stdin io.Reader, env map[string]string, argv ...string) result {
	var out, errOut bytes.Buffer
	code := hooktools.ClientMain(argv, stdin, &out, &errOut, func(k string) string { return env[k] })
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// toolCase is one row of a tool's table test.
type toolCase struct {
	name  string
	argv  []string
	stdin string
	setup func(b *hooktoolstest.Backend) // before the call; optional
	want  result
	calls []hooktoolstest.Call                             // nil: not checked
	check func(t *testing.T, h *testHook, logs *logBuffer) // optional
}

// runToolCases runs each case against a fresh context on one server.
func runToolCases(t *testing.T, tests []toolCase) {
	t.Helper()
	srv := startServer(t, serverOpts{level: zerolog.TraceLevel})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := srv.register(t, nil)
			if tt.setup != nil {
				tt.setup(h.backend)
			}
			var stdin io.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			got := h.run(t, stdin, tt.argv...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tt.argv, diff)
			}
			if tt.calls != nil {
				if diff := cmp.Diff(tt.calls, h.backend.Calls(), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("backend calls (-want +got):\n%s", diff)
				}
			}
			if tt.check != nil {
				tt.check(t, h, srv.logs)
			}
		})
	}
}

// ok is a successful result printing stdout.
func ok(stdout string) result { return result{Stdout: stdout} }

// usageErr is an exit-2 result whose stderr is exactly msg.
func usageErr(msg string) result { return result{Stderr: "ERROR " + msg + "\n", Code: 2} }

// runErr is an exit-1 result whose stderr is exactly msg.
func runErr(msg string) result { return result{Stderr: "ERROR " + msg + "\n", Code: 1} }

// argv splits a command line on spaces (no quoting needed in tables).
func argv(s string) []string { return strings.Fields(s) }
