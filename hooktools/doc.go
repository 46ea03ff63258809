// Package hooktools serves the hook tools (is-leader, leader-get,
// leader-set, config-get, status-set, status-get, juju-log,
// application-version-set, the relation tools, network-get, unit-get, the
// port tools and the action tools action-get, action-set, action-log,
// action-fail) that charm hooks and actions call, and installs them. An
// action's context carries an [Action]: its params, and the results and
// failure its tools record.
//
// # Shape
//
// The agent runs one [Server] on a unix socket in a 0700 directory. Before
// each hook it registers a [HookContext] (a snapshot of config and leader
// settings, plus a [Backend] for live operations) and passes the returned
// id to the hook as JUJU_CONTEXT_ID; when the hook ends it calls done,
// after which the id is refused. What a hook buffers to commit only if it
// exits 0 (relation-set, open-port, close-port) the agent takes with
// [Server.Pending] and [Server.PendingPorts] before it calls done. The tools are symlinks ([InstallSymlinks])
// to the small uniter-hooktools binary beside the uniter binary, or to the
// uniter binary itself when that is missing ([ToolTarget]); both run the
// client, package [github.com/uniter-dev/uniter/hooktools/toolclient]
// ([ClientMain] here), when basename(argv[0]) is a tool name. The client
// is kept apart so that the small binary links nothing else: a hook pays
// for one process start per tool call. All argument parsing, output
// formatting and error wording happens in the server, so the client only
// moves bytes.
//
// # Wire protocol
//
// One request per connection. The client connects to
// JUJU_AGENT_SOCKET_ADDRESS and writes one frame; the server answers with
// one frame and closes the connection. A frame is a 4-byte big-endian
// length N followed by N bytes of JSON. The request is
//
//	{"v": 1, "context_id": "…", "tool": "leader-get", "args": ["base64…", …],
//	 "cwd": "/var/lib/…/charm", "stdin": "base64…"}
//
// Arguments are bytes (base64, as encoding/json writes []byte) because
// argv may hold bytes that are not UTF-8; cwd is empty when it is not
// UTF-8. stdin is sent only by `leader-set --file -`, the one form that
// reads it. The response is
//
//	{"stdout": "base64…", "stderr": "base64…", "code": 0}
//
// and the client copies stdout and stderr to its own and exits with code.
// Errors the server finds in the request itself (a malformed or oversized
// frame, a wrong context id) are answered the same way, with code 1 and
// `ERROR …` on stderr. The server checks the peer's uid (SO_PEERCRED)
// before it reads anything and bounds every frame, the arguments, stdin
// and the time a connection may stay idle (see [Limits]).
//
// # Logging
//
// Tool arguments and stdin can hold secrets, so they are logged at trace
// level only; debug has the tool, hook, exit code and duration.
// `juju-log` messages go to the server's logger as themselves.
package hooktools
