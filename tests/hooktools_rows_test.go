package tests

// The vocabulary of the tool charms' tables (hooktools_checks_test.go):
// stages, rows of calls and of facts, and how a row checks a call.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/agent"
)

// A stage is one run of a hook that the check reads on each unit that runs
// it. Its name is its subtest's; the first word is the hook.
type stage string

const (
	atInstall        stage = "install"
	atLeaderElected  stage = "leader-elected"
	atDefaults       stage = "config-changed with the defaults"
	atConfigSet      stage = "config-changed after config set"
	atLeaderSettings stage = "leader-settings-changed on the minion"

	// The peer relation's hooks (metadata.yaml's peers: cluster).
	atRelCreated    stage = "cluster-relation-created"
	atRelJoined     stage = "cluster-relation-joined"
	atRelChanged    stage = "cluster-relation-changed for the remote unit, with its data"
	atRelChangedApp stage = "cluster-relation-changed for the application"
	atRelDeparted   stage = "cluster-relation-departed once the minion is removed"
)

// allStages is every stage, in the order the hooks run (the relation's
// -joined and -changed run after start, among the others).
var allStages = []stage{atInstall, atRelCreated, atLeaderElected, atDefaults, atConfigSet,
	atRelJoined, atRelChanged, atRelChangedApp, atLeaderSettings, atRelDeparted}

// hook is the hook whose run s reads.
func (s stage) hook() string {
	h, _, _ := strings.Cut(string(s), " ")
	return h
}

// who is the units a row is about, among those that run its stage's hook.
type who int

const (
	onEach who = iota
	onLeader
	onMinion
)

// toolRow is a row of a charm's call table: the run of its stage's hook on
// each unit of on makes the call the charm records as tool, with exactly
// argv where the charm records argv (a leading "$TOOLS/" is the unit's
// tools directory), and the call gives want.
type toolRow struct {
	at   stage
	on   who
	tool string
	argv []string
	want toolWant
}

// toolWant is what a call must give: its exit code, and its stdout and
// stderr exactly or, with prefix, output starting with them; with out set,
// out's verdict on stdout instead of a text. With log set, the juju-log
// entry the call wrote is in the unit's agent log so.
type toolWant struct {
	rc             int
	stdout, stderr string
	prefix         bool
	out            func(stdout string) error
	log            *jujuLog
}

// jujuLog is one juju-log entry of an agent log: its message, the level
// juju-log was given (juju_level) and the agent log's level.
type jujuLog struct{ message, jujuLevel, level string }

// says is a call that exits 0 and prints out, and nothing on stderr.
func says(out string) toolWant { return toolWant{stdout: out} }

// silent is a call that exits 0 and prints nothing.
var silent = toolWant{}

// refused is a call that exits 1 and prints stderr, and nothing on stdout.
func refused(stderr string) toolWant { return toolWant{rc: 1, stderr: stderr} }

// logged is w whose call wrote message with juju-log at jujuLevel, which
// the agent logs at level.
func (w toolWant) logged(message, jujuLevel, level string) toolWant {
	w.log = &jujuLog{message, jujuLevel, level}
	return w
}

// factRow is a row of a charm's fact table: something the run of its
// stage's hook on each unit of on recorded besides its calls, which check
// asserts.
type factRow[R any] struct {
	at    stage
	on    who
	what  string
	check func(t *testing.T, u *agentUnit, r R)
}

// relEnv is a hook's relation environment: JUJU_RELATION,
// JUJU_RELATION_ID, JUJU_REMOTE_UNIT, JUJU_REMOTE_APP and
// JUJU_DEPARTING_UNIT ("" when unset).
type relEnv struct{ relation, id, remoteUnit, remoteApp, departing string }

// toolCall is one tool call as a run recorded it.
type toolCall struct {
	name           string
	argv           []string // nil where the charm does not record it
	rc             int
	stdout, stderr string
}

// name names the row's call on u in failure messages.
func (row toolRow) name(u *agentUnit) string {
	s := fmt.Sprintf("%s %s %s", u.unit, row.at.hook(), row.tool)
	if row.argv != nil {
		s += fmt.Sprintf(" %q", row.argvOn(u))
	}
	return s
}

// argvOn is the row's argv on u: "$TOOLS/" and "$CHARM/" lead to u's
// tools and charm directories.
func (row toolRow) argvOn(u *agentUnit) []string {
	if row.argv == nil {
		return nil
	}
	argv := slices.Clone(row.argv)
	for i, a := range argv {
		if name, ok := strings.CutPrefix(a, "$TOOLS/"); ok {
			argv[i] = filepath.Join(agent.ToolsDir(u.dir), name)
		}
		if name, ok := strings.CutPrefix(a, "$CHARM/"); ok {
			argv[i] = u.path("charm", name)
		}
	}
	return argv
}

// check asserts that c, the call of the row on u, gives what the row wants.
func (row toolRow) check(t *testing.T, u *agentUnit, c toolCall) {
	t.Helper()
	w := row.want
	if argv := row.argvOn(u); !slices.Equal(c.argv, argv) {
		t.Errorf("%s: got argv %q", row.name(u), c.argv)
	}
	ok := c.rc == w.rc && c.stdout == w.stdout && c.stderr == w.stderr
	switch {
	case w.out != nil:
		ok = c.rc == w.rc && c.stderr == w.stderr
		if err := w.out(c.stdout); err != nil {
			t.Errorf("%s: stdout %q: %v", row.name(u), c.stdout, err)
		}
	case w.prefix:
		ok = c.rc == w.rc && strings.HasPrefix(c.stdout, w.stdout) && strings.HasPrefix(c.stderr, w.stderr)
	}
	if !ok {
		t.Errorf("%s:\n got exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q (prefix %v)",
			row.name(u), c.rc, c.stdout, c.stderr, w.rc, w.stdout, w.stderr, w.prefix)
	}
	if l := w.log; l != nil {
		checkJujuLog(t, u, row.at.hook(), map[string][2]string{l.message: {l.jujuLevel, l.level}})
	}
}
