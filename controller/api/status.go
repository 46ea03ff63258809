package api

import "time"

// Status is GET /v1/status and `uniter status --format json`: the stable
// schema of DESIGN.md §5. Fields are only ever added.
type Status struct {
	Applications map[string]ApplicationStatus `json:"applications"`
	Controller   ControllerStatus             `json:"controller"`
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
