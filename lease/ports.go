package lease

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// portsProtocol is the protocol of set-unit-ports and of the units'
// opened ports (snapshot format 4).
const portsProtocol = 5

// Port protocols (open-port's PORT/PROTO).
const (
	PortTCP  = "tcp"
	PortUDP  = "udp"
	PortICMP = "icmp"
)

// MaxUnitPortRanges bounds the port ranges one unit keeps open (each
// endpoint's range counts once). The state machine enforces it itself, as
// part of protocol 5: a set-unit-ports that would take a unit past it is
// refused with ErrTooLarge, naming the limit, and nothing is applied.
const MaxUnitPortRanges = 100

// PortRange is one port range a unit has opened (open-port), for one
// endpoint of its charm, or for all of them when Endpoint is "". An icmp
// range has no ports (From and To are 0); a tcp or udp range is
// From..To, both included, 0 <= From <= To <= 65535. uniter records the
// ranges and shows them; it opens no firewall.
type PortRange struct {
	Endpoint string `json:"endpoint,omitempty"`
	Protocol string `json:"protocol"`
	From     int    `json:"from,omitempty"`
	To       int    `json:"to,omitempty"`
}

// String is how hook tools and status print the range: "80/tcp",
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

// sameRange reports whether p and q are the same ports, whatever their
// endpoints.
func (p PortRange) sameRange(q PortRange) bool {
	return p.Protocol == q.Protocol && p.From == q.From && p.To == q.To
}

// ComparePortRanges orders ranges by protocol name, then ports, then
// endpoint ("" first): the order a unit's ranges are kept and shown in.
func ComparePortRanges(a, b PortRange) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.From, b.From),
		cmp.Compare(a.To, b.To), cmp.Compare(a.Endpoint, b.Endpoint))
}

// validate checks a range's protocol, bounds and endpoint name.
func (p PortRange) validate() error {
	switch p.Protocol {
	case PortICMP:
		if p.From != 0 || p.To != 0 {
			return fmt.Errorf("icmp range with ports %d-%d", p.From, p.To)
		}
	case PortTCP, PortUDP:
		if p.From < 0 || p.To > 65535 || p.From > p.To {
			return fmt.Errorf("invalid port range %d-%d/%s", p.From, p.To, p.Protocol)
		}
	default:
		return fmt.Errorf("invalid protocol %q", p.Protocol)
	}
	if p.Endpoint != "" && !ValidEndpointName(p.Endpoint) {
		return fmt.Errorf("invalid endpoint name %q", p.Endpoint)
	}
	return nil
}

// SetUnitPorts (protocol 5) records what one hook of Unit did with
// open-port and close-port, once the hook has exited 0: first every range
// of Close is closed (exactly that endpoint's range; absent: no-op), then
// every range of Open is opened: a range already open for all endpoints,
// or for that endpoint, is a no-op; opening it for all endpoints replaces
// its per-endpoint entries. Unknown unit: ErrUnknownUnit; a malformed
// range: ErrInvalidCommand; more than MaxUnitPortRanges ranges after:
// ErrTooLarge. The unit's modify index moves only if its ranges changed.
// Retry: idempotent.
type SetUnitPorts struct {
	Unit  string      `json:"unit"`
	Open  []PortRange `json:"open,omitempty"`
	Close []PortRange `json:"close,omitempty"`
}

// Type implements Op.
func (SetUnitPorts) Type() string { return "set-unit-ports" }

// needs implements gated: opened ports are protocol 5.
func (c SetUnitPorts) needs() (uint64, string) {
	return portsProtocol, "opened ports (" + c.Type() + ")"
}

func (c SetUnitPorts) apply(s *State, index uint64) Result {
	for _, p := range slices.Concat(c.Close, c.Open) {
		if err := p.validate(); err != nil {
			return invalid("set unit ports", "%v", err)
		}
	}
	u, ok := s.Units[c.Unit]
	if !ok {
		return fail(ErrUnknownUnit)
	}
	ports := ApplyPortChanges(u.OpenedPorts, c.Open, c.Close)
	if len(ports) > MaxUnitPortRanges {
		return fail(fmt.Errorf("cannot set unit ports: unit %s would have %d port ranges open; the limit is %d: %w",
			c.Unit, len(ports), MaxUnitPortRanges, ErrTooLarge))
	}
	if !slices.Equal(ports, u.OpenedPorts) {
		if len(ports) == 0 {
			ports = nil
		}
		u.OpenedPorts = ports
		s.touchUnit(u, index)
	}
	return Result{}
}

// ApplyPortChanges returns current (sorted, as a unit keeps it) with close
// then open applied as SetUnitPorts applies them, sorted; current is not
// changed.
func ApplyPortChanges(current, open, close []PortRange) []PortRange {
	out := slices.Clone(current)
	for _, p := range close {
		out = slices.DeleteFunc(out, func(q PortRange) bool { return q == p })
	}
	for _, p := range open {
		if slices.Contains(out, p) || slices.Contains(out, PortRange{Protocol: p.Protocol, From: p.From, To: p.To}) {
			continue
		}
		if p.Endpoint == "" {
			out = slices.DeleteFunc(out, p.sameRange)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, ComparePortRanges)
	return slices.Compact(out)
}

// hasPortState reports whether s holds anything of format 4.
func (s *State) hasPortState() bool {
	for _, u := range s.Units {
		if u != nil && len(u.OpenedPorts) > 0 {
			return true
		}
	}
	return false
}

// validatePorts checks a unit's opened ranges: each well formed, sorted,
// no duplicates, none also open for all endpoints, within the limit.
func validatePorts(u *Unit) error {
	if len(u.OpenedPorts) > MaxUnitPortRanges {
		return fmt.Errorf("%d port ranges open; the limit is %d", len(u.OpenedPorts), MaxUnitPortRanges)
	}
	for i, p := range u.OpenedPorts {
		if err := p.validate(); err != nil {
			return fmt.Errorf("opened port: %w", err)
		}
		if i > 0 && ComparePortRanges(u.OpenedPorts[i-1], p) >= 0 {
			return fmt.Errorf("opened ports are not sorted and unique at %s", p)
		}
		if p.Endpoint != "" && slices.Contains(u.OpenedPorts, PortRange{Protocol: p.Protocol, From: p.From, To: p.To}) {
			return fmt.Errorf("opened port %s for endpoint %q is also open for all endpoints", p, p.Endpoint)
		}
	}
	return nil
}

// portDecoders are the decoders of the port commands, added to the
// command registry.
var portDecoders = map[string]func(json.RawMessage) (Op, error){
	SetUnitPorts{}.Type(): decodeAs[SetUnitPorts],
}
