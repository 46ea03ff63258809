package hooktools

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Port protocols of a PortRange.
const (
	PortTCP  = "tcp"
	PortUDP  = "udp"
	PortICMP = "icmp"
)

// PortRange is a port range opened for one endpoint of the charm, or for
// all of them when Endpoint is "". An icmp range has no ports; a tcp or
// udp range is From..To, both included.
type PortRange struct {
	Endpoint string
	Protocol string
	From, To int
}

// String prints the range as opened-ports does: "80/tcp",
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

func (p PortRange) sameRange(q PortRange) bool {
	return p.Protocol == q.Protocol && p.From == q.From && p.To == q.To
}

func (p PortRange) forAll() PortRange { return PortRange{Protocol: p.Protocol, From: p.From, To: p.To} }

// comparePorts orders ranges by protocol name, then ports, then endpoint
// ("" first), as the controller keeps them.
func comparePorts(a, b PortRange) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.From, b.From),
		cmp.Compare(a.To, b.To), cmp.Compare(a.Endpoint, b.Endpoint))
}

// PortsBackend reads the unit's committed port ranges for the port tools;
// the agent implements it. Writes do not go through it: open-port and
// close-port are buffered, and the agent commits them once the hook has
// exited 0 (Server.PendingPorts).
type PortsBackend interface {
	// OpenedPorts returns the unit's port ranges as the controller has
	// them now.
	OpenedPorts(ctx context.Context) ([]PortRange, error)
}

// PortChanges are what a hook did with open-port and close-port, as the
// difference between the ranges committed when it first used a port tool
// and those open at its end: Close exactly these (endpoint, range) pairs,
// then Open these. Both sorted; both empty when nothing changed.
type PortChanges struct {
	Open, Close []PortRange
}

// Empty reports whether c has nothing to commit.
func (c PortChanges) Empty() bool { return len(c.Open) == 0 && len(c.Close) == 0 }

// portState is the port half of a hook's state, guarded by hookState.mu.
type portState struct {
	backend   PortsBackend
	loaded    bool
	committed []PortRange // at the first port tool call
	open      []PortRange // committed plus this hook's changes, sorted
}

// loadPorts reads the committed ranges once per hook.
func (h *hookState) loadPorts(ctx context.Context) error {
	if h.ports.loaded {
		return nil
	}
	var committed []PortRange
	if h.ports.backend != nil {
		var err error
		if committed, err = h.ports.backend.OpenedPorts(ctx); err != nil {
			return fmt.Errorf("cannot read opened ports: %w", err)
		}
	}
	committed = slices.Clone(committed)
	slices.SortFunc(committed, comparePorts)
	h.ports.committed, h.ports.open, h.ports.loaded = committed, slices.Clone(committed), true
	return nil
}

// openPort opens r for each of endpoints, or for all when there are none:
// a range already open for all endpoints, or for that one, stays as it
// is; opening for all replaces the range's per-endpoint entries.
func (h *hookState) openPort(r PortRange, endpoints []string) {
	open := h.ports.open
	if len(endpoints) == 0 {
		endpoints = []string{""}
	}
	for _, ep := range endpoints {
		p := r.forAll()
		p.Endpoint = ep
		if slices.Contains(open, p) || slices.Contains(open, r.forAll()) {
			continue
		}
		if ep == "" {
			open = slices.DeleteFunc(open, p.sameRange)
		}
		open = append(open, p)
	}
	slices.SortFunc(open, comparePorts)
	h.ports.open = open
}

// closePort closes r for each of endpoints, or for every endpoint (and
// all) when there are none. Closing a range for one endpoint leaves it
// open where it is open for all endpoints.
func (h *hookState) closePort(r PortRange, endpoints []string) {
	if len(endpoints) == 0 {
		h.ports.open = slices.DeleteFunc(h.ports.open, r.sameRange)
		return
	}
	for _, ep := range endpoints {
		p := r.forAll()
		p.Endpoint = ep
		h.ports.open = slices.DeleteFunc(h.ports.open, func(q PortRange) bool { return q == p })
	}
}

// PendingPorts returns what the hook registered under id did with
// open-port and close-port, for the agent to commit after the hook exited
// 0 and before it calls done; found is false once the context is gone.
func (s *Server) PendingPorts(id string) (changes PortChanges, found bool) {
	h := s.lookup(id)
	if h == nil {
		return PortChanges{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ports.loaded {
		return PortChanges{}, true
	}
	for _, p := range h.ports.committed {
		if !slices.Contains(h.ports.open, p) {
			changes.Close = append(changes.Close, p)
		}
	}
	for _, p := range h.ports.open {
		if !slices.Contains(h.ports.committed, p) {
			changes.Open = append(changes.Open, p)
		}
	}
	return changes, true
}
