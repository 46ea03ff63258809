package hooks

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultJujuVersion is the JUJU_VERSION hooks see when Params.JujuVersion
// is empty. ops gates features on it and refuses anything but X.Y.Z.
const DefaultJujuVersion = "3.6.8"

// Params describe one hook run.
type Params struct {
	// Kind is the hook to run.
	Kind Kind
	// Unit is the unit's name, e.g. "app/0".
	Unit string
	// CharmDir is the unit's charm directory and the hook's working
	// directory; absolute.
	CharmDir string
	// ToolsDir holds the hook tools and goes first on PATH; absolute, or
	// empty for no tools.
	ToolsDir string
	// ContextID identifies the hook's context to the hook-tool server.
	ContextID string
	// SocketPath is the hook-tool socket (JUJU_AGENT_SOCKET_ADDRESS).
	SocketPath string
	// ModelName and ModelUUID become JUJU_MODEL_NAME and JUJU_MODEL_UUID.
	ModelName, ModelUUID string
	// JujuVersion becomes JUJU_VERSION; DefaultJujuVersion when empty.
	JujuVersion string
	// LeadershipTerm becomes UNITER_LEADERSHIP_TERM.
	LeadershipTerm uint64
	// Relation is set for a relation hook.
	Relation *RelationParams
}

// RelationParams are a relation hook's part of its environment.
type RelationParams struct {
	// Endpoint becomes JUJU_RELATION, ID ("endpoint:N") JUJU_RELATION_ID.
	Endpoint, ID string
	// RemoteUnit becomes JUJU_REMOTE_UNIT (set, maybe empty, in every
	// relation hook), RemoteApp JUJU_REMOTE_APP and DepartingUnit
	// JUJU_DEPARTING_UNIT (each only when not empty).
	RemoteUnit, RemoteApp, DepartingUnit string
}

var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// Validate reports the first problem that would stop the hook from running
// with a well-formed environment.
func (p Params) Validate() error {
	if err := p.Kind.Validate(); err != nil {
		return err
	}
	return p.validateEnv()
}

// validateEnv is Validate without the hook kind: what every charm
// process (hook, action, command) needs.
func (p Params) validateEnv() error {
	switch {
	case p.Unit == "":
		return errors.New("unit name is empty")
	case !filepath.IsAbs(p.CharmDir):
		return fmt.Errorf("charm directory %q is not absolute", p.CharmDir)
	case p.ToolsDir != "" && !filepath.IsAbs(p.ToolsDir):
		return fmt.Errorf("tools directory %q is not absolute", p.ToolsDir)
	case strings.Contains(p.ToolsDir, ":"):
		return fmt.Errorf("tools directory %q contains ':'", p.ToolsDir)
	case p.JujuVersion != "" && !versionRE.MatchString(p.JujuVersion):
		return fmt.Errorf("juju version %q is not X.Y.Z", p.JujuVersion)
	}
	return nil
}

// dispatchPath is JUJU_DISPATCH_PATH: the hook as a path relative to the
// charm directory.
func (p Params) dispatchPath() string { return "hooks/" + string(p.Kind) }
