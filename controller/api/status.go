package api

import "time"

// Status is GET /v1/status and `uniter status --format json`: the stable
// schema of DESIGN.md §5. Fields are only ever added.
type Status struct {
	Applications map[string]ApplicationStatus `json:"applications"`
	// Relations lists every relation by id ([] when there are none).
	Relations  []RelationStatus `json:"relations"`
	Controller ControllerStatus `json:"controller"`
}

// Relation types of RelationStatus, as Juju's status names them.
const (
	RelationRegular = "regular"
	RelationPeer    = "peer"
)

// RelationStatus is one relation, as a row of Juju's "Integration
// provider / Requirer / Interface / Type" table: Provider and Requirer are
// "app:endpoint" (both the endpoint itself for a peer relation); Units
// are the units in its scope, sorted.
type RelationStatus struct {
	ID        int      `json:"id"`
	Key       string   `json:"key"`
	Provider  string   `json:"provider"`
	Requirer  string   `json:"requirer"`
	Interface string   `json:"interface"`
	Type      string   `json:"type"`
	Life      string   `json:"life"`
	Units     []string `json:"units"`
}

// ApplicationStatus is one application. Leader is null when the lease is
// vacant; Pinned is [] when unpinned. Status is the application status set
// by its leader (absent until set); Version is the leader's (else the first
// unit's) application version (absent when none is set).
type ApplicationStatus struct {
	Leader   *string               `json:"leader"`
	Term     uint64                `json:"term"`
	StepDown bool                  `json:"step_down,omitempty"`
	Pinned   []PinStatus           `json:"pinned"`
	Units    map[string]UnitStatus `json:"units"`
	Status   *StatusInfo           `json:"status,omitempty"`
	Version  string                `json:"version,omitempty"`
	// Relations maps each of the application's endpoints that is in a
	// relation to the applications on the other side, sorted (its own
	// name for a peers endpoint), as Juju's status does; absent when none.
	Relations map[string][]string `json:"relations,omitempty"`
}

// PinStatus is one pin; Until is null for a pin without an end.
type PinStatus struct {
	Entity string     `json:"entity"`
	Reason string     `json:"reason"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until"`
}

// UnitStatus is one unit. Agent.Status is one of allocating idle executing
// error lost ("lost" when the agent has not reported for the controller's
// lost-after interval of global time).
type UnitStatus struct {
	Leader             bool       `json:"leader"`
	Life               string     `json:"life,omitempty"`
	Agent              StatusInfo `json:"agent"`
	Workload           StatusInfo `json:"workload"`
	ApplicationVersion string     `json:"application_version,omitempty"`
	// OpenPorts are the port ranges the unit's hooks opened ("80/tcp",
	// "8000-8010/udp", "icmp"), each once whatever its endpoints, sorted
	// by protocol then port; absent when none.
	OpenPorts []string `json:"open_ports,omitempty"`
}

// StatusInfo is a status, its message and since when it holds.
type StatusInfo struct {
	Status  string    `json:"status"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
}

// ControllerStatus lists the controller's nodes and the controller
// protocol version the cluster runs (docs/upgrades.md).
type ControllerStatus struct {
	Nodes            []Node `json:"nodes"`
	EffectiveVersion uint64 `json:"effective_version"`
	// Message is set while the controller cannot take writes, as the
	// answering node sees it ("controller unavailable: ..."); the units'
	// agent messages then say so too, since their agents cannot report.
	Message string `json:"message,omitempty"`
}
