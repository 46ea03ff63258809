package hooktools

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

var openPortTool = toolInfo{
	args:    "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
	summary: "register a request to open a port or port range",
	doc: `open-port registers a port or a range of ports (protocol tcp by default; udp;
or icmp, which has no ports) as open for the endpoints given by --endpoints
(comma-separated; by default all of the charm's endpoints). Opening a range
that is already open does nothing. The change is sent to the controller only
if the hook succeeds, and shown by "uniter status"; uniter opens no firewall.
`,
	new: func() command { return &portCmd{open: true} },
}

var closePortTool = toolInfo{
	args:    "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
	summary: "register a request to close a port or port range",
	doc: `close-port registers a port or a range of ports as closed for the endpoints
given by --endpoints (comma-separated; by default every endpoint, and all of
them). A range that was opened for all endpoints stays open when it is closed
for some of them only. The change is sent to the controller only if the hook
succeeds.
`,
	new: func() command { return &portCmd{} },
}

// portCmd is open-port, or close-port.
type portCmd struct {
	open      bool
	endpoints string
	r         PortRange
}

func (c *portCmd) setFlags(f *flagSet) {
	f.stringVar(&c.endpoints, "", "a comma-delimited list of application endpoints to target with this operation", nil, "endpoints")
}

func (c *portCmd) init(args []string) (err error) {
	if len(args) == 0 {
		return fmt.Errorf("no port or range specified")
	}
	if c.r, err = parsePortRange(args[0]); err != nil {
		return err
	}
	return checkEmpty(args[1:])
}

// parsePortRange parses open-port's argument as Juju does: PORT[/PROTO],
// FROM-TO[/PROTO] or icmp; the protocol is tcp by default, lowercased.
func parsePortRange(s string) (PortRange, error) {
	ports, proto, hasProto := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = PortTCP
		if strings.EqualFold(ports, PortICMP) {
			return PortRange{Protocol: PortICMP}, nil
		}
	}
	switch proto {
	case PortTCP, PortUDP:
	case PortICMP:
		return PortRange{}, fmt.Errorf("invalid port range %s", s)
	default:
		return PortRange{}, fmt.Errorf("invalid protocol %q, expected %q, %q, or %q", proto, PortTCP, PortUDP, PortICMP)
	}
	from, to, isRange := strings.Cut(ports, "-")
	if !isRange {
		to = from
	}
	lo, err1 := strconv.Atoi(from)
	hi, err2 := strconv.Atoi(to)
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("invalid port range %q", s)
	}
	if lo < 0 || hi < 0 || lo > 65535 || hi > 65535 {
		return PortRange{}, fmt.Errorf("port range bounds must be between 0 and 65535, got %d-%d", lo, hi)
	}
	r := PortRange{Protocol: proto, From: lo, To: hi}
	if lo > hi {
		return PortRange{}, fmt.Errorf("invalid port range %d-%d/%s", lo, hi, proto)
	}
	return r, nil
}

// splitEndpoints parses --endpoints: names separated by commas, blanks
// ignored, each a binding of the charm.
func splitEndpoints(h *hookState, list string) ([]string, error) {
	var out []string
	for _, ep := range strings.Split(list, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" || slices.Contains(out, ep) {
			continue
		}
		if !slices.Contains(h.bindings, ep) {
			return nil, fmt.Errorf("unknown endpoint %q", ep)
		}
		out = append(out, ep)
	}
	return out, nil
}

func (c *portCmd) run(inv *invocation) error {
	endpoints, err := splitEndpoints(inv.h, c.endpoints)
	if err != nil {
		return err
	}
	if err := inv.h.loadPorts(inv.ctx); err != nil {
		return err
	}
	if c.open {
		inv.h.openPort(c.r, endpoints)
	} else {
		inv.h.closePort(c.r, endpoints)
	}
	return nil
}

var openedPortsTool = toolInfo{
	summary: "list all ports or port ranges opened by the unit",
	doc: `opened-ports lists the port ranges this unit has open, including those this hook
opened or closed, sorted by protocol, then port: "80/tcp", "8000-8010/udp",
"icmp". With --endpoints each range is followed by the endpoints it is open
for, "(*)" meaning all of them.
`,
	new: func() command { return &openedPortsCmd{} },
}

type openedPortsCmd struct {
	out       output
	endpoints bool
}

func (c *openedPortsCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	f.boolVar(&c.endpoints, "display the list of target application endpoints for each port range", "endpoints")
}

func (c *openedPortsCmd) init(args []string) error { return checkEmpty(args) }

func (c *openedPortsCmd) run(inv *invocation) error {
	if err := inv.h.loadPorts(inv.ctx); err != nil {
		return err
	}
	lines := []string{}
	var eps map[string][]string
	if c.endpoints {
		eps = map[string][]string{}
	}
	for _, p := range inv.h.ports.open { // sorted: a range's entries are adjacent
		s := p.String()
		if len(lines) == 0 || lines[len(lines)-1] != s {
			lines = append(lines, s)
		}
		if eps != nil {
			name := p.Endpoint
			if name == "" {
				name = "*"
			}
			eps[s] = append(eps[s], name)
		}
	}
	if eps != nil {
		for i, s := range lines {
			lines[i] = s + " (" + strings.Join(eps[s], ", ") + ")"
		}
	}
	return c.out.write(inv, lines)
}
