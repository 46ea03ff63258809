package hooks

import (
	"slices"
	"strconv"
)

// SystemPath is the part of a hook's PATH after the tools directory.
const SystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// passedEnv are the agent's variables a hook inherits when the agent has
// them; nothing else of the agent's environment reaches a hook.
var passedEnv = []string{
	"LANG", "LC_ALL", "TZ",
	"http_proxy", "https_proxy", "no_proxy",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
}

// Environ returns the complete, sorted environment of the hook described by
// p, built fresh (HOOK-TOOLS.md §1). lookup supplies the agent's LANG,
// LC_ALL, TZ and proxy variables (os.LookupEnv in production); a nil lookup
// passes none. OPERATOR_DISPATCH is never set: ops sets it itself.
func Environ(p Params, lookup func(string) (string, bool)) []string {
	path := SystemPath
	if p.ToolsDir != "" {
		path = p.ToolsDir + ":" + SystemPath
	}
	version := p.JujuVersion
	if version == "" {
		version = DefaultJujuVersion
	}
	env := []string{
		"PATH=" + path,
		"JUJU_UNIT_NAME=" + p.Unit,
		"JUJU_CHARM_DIR=" + p.CharmDir,
		"CHARM_DIR=" + p.CharmDir,
		"JUJU_HOOK_NAME=" + string(p.Kind),
		"JUJU_DISPATCH_PATH=" + p.dispatchPath(),
		"JUJU_CONTEXT_ID=" + p.ContextID,
		"JUJU_AGENT_SOCKET_ADDRESS=" + p.SocketPath,
		"JUJU_AGENT_SOCKET_NETWORK=unix",
		"JUJU_MODEL_NAME=" + p.ModelName,
		"JUJU_MODEL_UUID=" + p.ModelUUID,
		"JUJU_VERSION=" + version,
		"UNITER_LEADERSHIP_TERM=" + strconv.FormatUint(p.LeadershipTerm, 10),
	}
	if r := p.Relation; r != nil {
		env = append(env, "JUJU_RELATION="+r.Endpoint, "JUJU_RELATION_ID="+r.ID, "JUJU_REMOTE_UNIT="+r.RemoteUnit)
		if r.RemoteApp != "" {
			env = append(env, "JUJU_REMOTE_APP="+r.RemoteApp)
		}
		if r.DepartingUnit != "" {
			env = append(env, "JUJU_DEPARTING_UNIT="+r.DepartingUnit)
		}
	}
	if lookup != nil {
		for _, name := range passedEnv {
			if v, ok := lookup(name); ok {
				env = append(env, name+"="+v)
			}
		}
	}
	slices.Sort(env)
	return env
}
