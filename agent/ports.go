package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/hooktools"
)

// PortsAPI is what the port tools need of the controller; the typed
// client (controller/client) implements it.
type PortsAPI interface {
	OpenedPorts(ctx context.Context, unit string) ([]api.PortRange, error)
	SetUnitPorts(ctx context.Context, unit string, open, close []api.PortRange) error
}

// PendingPorts gives what a hook did with open-port and close-port;
// *hooktools.Server is it.
type PendingPorts interface {
	PendingPorts(id string) (hooktools.PortChanges, bool)
}

// networkContext is what network-get, unit-get and the port tools of
// every hook get: the unit's address and the charm's bindings.
type networkContext struct {
	network  hooktools.Network
	bindings []string
}

// newNetworkContext finds the unit's address (agent.yaml address, else the
// host's primary address) and the charm's bindings: its endpoints and
// juju-info. A charm whose metadata cannot be read has juju-info only.
func newNetworkContext(cfg Config, log zerolog.Logger) (networkContext, error) {
	n, err := unitNetwork(cfg.Address, defaultRouteSource, systemInterfaces)
	if err != nil {
		return networkContext{}, fmt.Errorf("cannot find the unit's address: %w", err)
	}
	bindings := []string{api.JujuInfoEndpoint}
	if md, err := charm.ReadMetadata(cfg.CharmDir); err != nil {
		log.Warn().Err(err).Msg("cannot read charm endpoints: network-get answers for juju-info only")
	} else {
		for name := range md.Endpoints {
			bindings = append(bindings, name)
		}
	}
	slices.Sort(bindings)
	log.Info().Str("address", n.Address).Str("cidr", n.CIDR).Str("interface", n.Interface).Msg("unit address")
	return networkContext{network: n, bindings: bindings}, nil
}

// addNetwork gives a hook's tool context the unit's address, the charm's
// bindings and the unit's committed ports.
func (h *hookContexts) addNetwork(hc *hooktools.HookContext) {
	hc.Network, hc.Bindings = h.net.network, slices.Clone(h.net.bindings)
	if p, ok := h.ctrl.(PortsAPI); ok {
		hc.PortsBackend = portsBackend{api: p, unit: h.cfg.Unit}
	}
}

// portsBackend reads the unit's committed ports for the port tools.
type portsBackend struct {
	api  PortsAPI
	unit string
}

// OpenedPorts implements hooktools.PortsBackend.
func (b portsBackend) OpenedPorts(ctx context.Context) ([]hooktools.PortRange, error) {
	in, err := b.api.OpenedPorts(ctx, b.unit)
	if err != nil {
		return nil, err
	}
	out := make([]hooktools.PortRange, 0, len(in))
	for _, p := range in {
		out = append(out, hooktools.PortRange{Endpoint: p.Endpoint, Protocol: p.Protocol, From: p.From, To: p.To})
	}
	return out, nil
}

// commitPorts sends what the hook or operation registered under
// contextID did with open-port and close-port to the controller, once it
// has exited 0 (HOOK-TOOLS.md §6, "Commit rule"): a failed run's changes
// are dropped with its context. A refused commit fails the hook, which is
// then retried like any failed hook; the commit is idempotent, so a crash
// before the hook is recorded done only sends it again. what names the
// hook or operation in the error and the log.
func (h *hookContexts) commitPorts(ctx context.Context, contextID, what string) error {
	pending, ok1 := h.tools.(PendingPorts)
	p, ok2 := h.ctrl.(PortsAPI)
	if !ok1 || !ok2 || contextID == "" {
		return nil
	}
	changes, ok := pending.PendingPorts(contextID)
	if !ok || changes.Empty() {
		return nil
	}
	if err := p.SetUnitPorts(ctx, h.cfg.Unit, apiPorts(changes.Open), apiPorts(changes.Close)); err != nil {
		return fmt.Errorf("cannot commit opened ports of %s: %w", what, err)
	}
	h.log.Info().Str("hook", what).Int("opened", len(changes.Open)).Int("closed", len(changes.Close)).
		Msg("committed opened ports")
	return nil
}

func apiPorts(in []hooktools.PortRange) []api.PortRange {
	var out []api.PortRange
	for _, p := range in {
		out = append(out, api.PortRange{Endpoint: p.Endpoint, Protocol: p.Protocol, From: p.From, To: p.To})
	}
	return out
}
