package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/charm"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/operation"
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

// portsCommitter runs hooks with runner and, once a hook has exited 0,
// sends what it did with open-port and close-port to the controller
// before the hook counts as done (HOOK-TOOLS.md §6, "Commit rule"): a
// failed hook's changes are dropped with its context, and a refused
// commit fails the hook, which is then retried like any failed hook. A
// crash between the two leaves the hook pending, so it runs again; the
// commit is idempotent.
type portsCommitter struct {
	runner  operation.HookRunner
	pending PendingPorts
	api     PortsAPI
	unit    string
	log     zerolog.Logger
}

// withPortCommits wraps runner with the port commit when the agent has
// hook tools and a controller that takes ports; else it returns runner.
func withPortCommits(runner operation.HookRunner, src Sources, unit string, log zerolog.Logger) operation.HookRunner {
	pending, ok1 := src.Tools.(PendingPorts)
	p, ok2 := src.Controller.(PortsAPI)
	if !ok1 || !ok2 {
		return runner
	}
	return portsCommitter{runner: runner, pending: pending, api: p, unit: unit, log: log}
}

// Run implements operation.HookRunner.
func (c portsCommitter) Run(ctx context.Context, p hooks.Params) error {
	if err := c.runner.Run(ctx, p); err != nil {
		return err
	}
	changes, ok := c.pending.PendingPorts(p.ContextID)
	if !ok || changes.Empty() {
		return nil
	}
	if err := c.api.SetUnitPorts(ctx, c.unit, apiPorts(changes.Open), apiPorts(changes.Close)); err != nil {
		return fmt.Errorf("cannot commit opened ports of hook %q: %w", p.Kind, err)
	}
	c.log.Info().Str("hook", string(p.Kind)).Int("opened", len(changes.Open)).Int("closed", len(changes.Close)).
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
