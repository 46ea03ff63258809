package hooktools

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Network is the unit's address as network-get and unit-get answer it:
// the agent's configured address (agent.yaml address, by default the
// host's primary address) and what the host knows of the interface that
// has it.
type Network struct {
	// Address is the unit's address (IPv4 or IPv6, no port). Empty: no
	// network config, and network-get and unit-get fail.
	Address string
	// CIDR is the subnet of the interface that has the address
	// ("10.0.0.0/24"), or the address as a host prefix when no interface
	// has it.
	CIDR string
	// Interface and MAC name that interface ("" when unknown).
	Interface, MAC string
}

// egressSubnet is the address as a one-host subnet, as Juju gives a unit
// without egress configuration.
func (n Network) egressSubnet() string {
	for _, c := range n.Address {
		if c == ':' {
			return n.Address + "/128"
		}
	}
	return n.Address + "/32"
}

var networkGetTool = toolInfo{
	args:    "<binding-name>",
	summary: "get network config",
	doc: `network-get prints the network config of a binding (an endpoint of the charm's
metadata.yaml, or juju-info): its bind-addresses, ingress-addresses and
egress-subnets. One of --bind-address, --ingress-address or --egress-subnets
prints that value alone (--primary-address: the first bind address); several
print a map of them. uniter answers with the agent's configured address for
every binding.
`,
	new: func() command { return &networkGetCmd{} },
}

type networkGetCmd struct {
	out                            output
	rel                            relationFlag
	binding                        string
	bind, ingress, egress, primary bool
}

func (c *networkGetCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	c.rel.setFlags(f)
	f.boolVar(&c.bind, "get the address for the binding on which the unit should listen", "bind-address")
	f.boolVar(&c.ingress, "get the ingress-address for the binding", "ingress-address")
	f.boolVar(&c.egress, "get the egress subnets for the binding", "egress-subnets")
	f.boolVar(&c.primary, "(deprecated) get the primary address for the binding", "primary-address")
}

func (c *networkGetCmd) init(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no arguments specified")
	}
	c.binding = args[0]
	return checkEmpty(args[1:])
}

func (c *networkGetCmd) run(inv *invocation) error {
	if c.rel.raw != "" {
		if _, err := c.rel.resolve(inv.h); err != nil {
			return err
		}
	}
	n := inv.h.network
	if !slices.Contains(inv.h.bindings, c.binding) || n.Address == "" {
		return fmt.Errorf("no network config found for binding %q", c.binding)
	}
	egress := []string{n.egressSubnet()}
	values := map[string]any{}
	if c.bind || c.primary {
		values["bind-address"] = n.Address
	}
	if c.ingress {
		values["ingress-address"] = n.Address
	}
	if c.egress {
		values["egress-subnets"] = egress
	}
	switch {
	case len(values) == 1:
		for _, v := range values {
			return c.out.write(inv, v)
		}
	case len(values) > 1:
		return c.out.write(inv, values)
	}
	return c.out.write(inv, map[string]any{
		"bind-addresses": []any{map[string]any{
			"mac-address":    quoted(n.MAC),
			"interface-name": n.Interface,
			"addresses":      []any{map[string]any{"hostname": "", "value": n.Address, "cidr": n.CIDR}},
		}},
		"egress-subnets":    egress,
		"ingress-addresses": []string{n.Address},
	})
}

var unitGetTool = toolInfo{
	args:    "<setting>",
	summary: "print public-address or private-address",
	doc: `unit-get prints the unit's private-address or public-address: both are the
agent's configured address.
`,
	new: func() command { return &unitGetCmd{} },
}

type unitGetCmd struct {
	out     output
	setting string
}

func (c *unitGetCmd) setFlags(f *flagSet) { c.out.setFlags(f) }

func (c *unitGetCmd) init(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no setting specified")
	}
	if args[0] != "private-address" && args[0] != "public-address" {
		return fmt.Errorf("unknown setting %q", args[0])
	}
	c.setting = args[0]
	return checkEmpty(args[1:])
}

func (c *unitGetCmd) run(inv *invocation) error {
	if inv.h.network.Address == "" {
		return fmt.Errorf("%s not set", c.setting)
	}
	return c.out.write(inv, inv.h.network.Address)
}

// quoted is a string that YAML output always quotes: a MAC address such as
// 52:54:00:12:34:56 would otherwise read back as a base-60 number in YAML
// 1.1 (charmhelpers parses network-get's YAML with PyYAML).
type quoted string

// MarshalYAML implements yaml.Marshaler.
func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}
