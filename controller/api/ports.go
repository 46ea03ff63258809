package api

import "fmt"

// Port protocols of a PortRange.
const (
	PortTCP  = "tcp"
	PortUDP  = "udp"
	PortICMP = "icmp"
)

// PortRange is one port range a unit opened with open-port: for one
// endpoint of its charm, or for all of them when Endpoint is "". An icmp
// range has no ports; a tcp or udp range is From..To, both included
// (controller protocol 5; uniter records the ranges, it opens no firewall).
type PortRange struct {
	Endpoint string `json:"endpoint,omitempty"`
	Protocol string `json:"protocol"`
	From     int    `json:"from,omitempty"`
	To       int    `json:"to,omitempty"`
}

// String prints the range as the hook tools and status do: "80/tcp",
// "8000-8010/udp", "icmp" (without the endpoint).
func (p PortRange) String() string {
	switch {
	case p.Protocol == PortICMP:
		return PortICMP
	case p.From == p.To:
		return fmt.Sprintf("%d/%s", p.From, p.Protocol)
	default:
		return fmt.Sprintf("%d-%d/%s", p.From, p.To, p.Protocol)
	}
}

// UnitPorts answers GET /v1/units/{app}/{n}/ports: the unit's opened
// ranges, sorted by protocol, ports and endpoint ([] when none, and from a
// cluster below protocol 5).
type UnitPorts struct {
	Ports []PortRange `json:"ports"`
}

// PortsRequest is POST /v1/units/{app}/{n}/ports: what one hook did with
// open-port and close-port, sent once it exited 0. Close is applied first
// (each exactly that endpoint's range), then Open (a range open for all
// endpoints covers every endpoint; opening it for all replaces its
// per-endpoint entries). Refused: a malformed range or an endpoint the
// charm does not have (400), more than the per-unit limit of ranges after
// the change (413 limit-exceeded), a cluster below protocol 5 (409
// needs-protocol).
type PortsRequest struct {
	Open  []PortRange `json:"open,omitempty"`
	Close []PortRange `json:"close,omitempty"`
}

// JujuInfoEndpoint is the endpoint every charm has implicitly: a port may
// be opened for it as for the endpoints of its metadata.yaml.
const JujuInfoEndpoint = "juju-info"
