package hooktools_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/uniter-dev/uniter/hooktools"
)

func htTCP(from, to int) hooktools.PortRange {
	return hooktools.PortRange{Protocol: hooktools.PortTCP, From: from, To: to}
}

func onEndpoint(ep string, p hooktools.PortRange) hooktools.PortRange {
	p.Endpoint = ep
	return p
}

var htICMP = hooktools.PortRange{Protocol: hooktools.PortICMP}

type portCase struct {
	name      string
	committed []hooktools.PortRange
	before    []string // tool calls that must succeed silently first
	argv      string
	want      result
	pending   hooktools.PortChanges // checked after the calls
}

func runPortCases(t *testing.T, cases []portCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			h := networkContext(t, testNetwork, tt.committed...)
			for _, call := range tt.before {
				if got := h.run(t, nil, argv(call)...); got != ok("") {
					t.Fatalf("%s: %+v", call, got)
				}
			}
			if diff := cmp.Diff(tt.want, h.run(t, nil, argv(tt.argv)...)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.argv, diff)
			}
			pending, found := h.srv.PendingPorts(h.id)
			if !found {
				t.Fatal("no pending ports for a live context")
			}
			if diff := cmp.Diff(tt.pending, pending, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("pending ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenPort(t *testing.T) {
	udp53 := hooktools.PortRange{Protocol: hooktools.PortUDP, From: 53, To: 53}
	runPortCases(t, []portCase{
		{name: "port, tcp by default", argv: "open-port 80", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{htTCP(80, 80)}}},
		{name: "protocol upper-case (charmhelpers)", argv: "open-port 80/TCP", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{htTCP(80, 80)}}},
		{name: "udp", argv: "open-port 53/udp", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{udp53}}},
		{name: "range", argv: "open-port 8000-8010/tcp", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{htTCP(8000, 8010)}}},
		{name: "icmp", argv: "open-port icmp", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{htICMP}}},
		{name: "ICMP (charmhelpers)", argv: "open-port ICMP", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{htICMP}}},
		{name: "port 0", argv: "open-port 0/udp", want: ok(""), pending: hooktools.PortChanges{Open: []hooktools.PortRange{{Protocol: "udp"}}}},
		{name: "endpoints", argv: "open-port --endpoints db,cluster 80", want: ok(""),
			pending: hooktools.PortChanges{Open: []hooktools.PortRange{onEndpoint("cluster", htTCP(80, 80)), onEndpoint("db", htTCP(80, 80))}}},
		{name: "flag after the port", argv: "open-port 80 --endpoints=juju-info", want: ok(""),
			pending: hooktools.PortChanges{Open: []hooktools.PortRange{onEndpoint("juju-info", htTCP(80, 80))}}},
		{name: "repeat open is a no-op", committed: []hooktools.PortRange{htTCP(80, 80)}, before: []string{"open-port 80"}, argv: "open-port 80/tcp", want: ok("")},
		{name: "open for an endpoint under an open-for-all", committed: []hooktools.PortRange{htTCP(80, 80)}, argv: "open-port --endpoints db 80", want: ok("")},
		{name: "open for all replaces per-endpoint", committed: []hooktools.PortRange{onEndpoint("db", htTCP(80, 80))}, argv: "open-port 80", want: ok(""),
			pending: hooktools.PortChanges{Open: []hooktools.PortRange{htTCP(80, 80)}, Close: []hooktools.PortRange{onEndpoint("db", htTCP(80, 80))}}},
		{name: "no port", argv: "open-port", want: usageErr("no port or range specified")},
		{name: "bad protocol", argv: "open-port 80/sctp", want: usageErr(`invalid protocol "sctp", expected "tcp", "udp", or "icmp"`)},
		{name: "reversed range", argv: "open-port 20-10", want: usageErr("invalid port range 20-10/tcp")},
		{name: "out of bounds", argv: "open-port 1-70000/udp", want: usageErr("port range bounds must be between 0 and 65535, got 1-70000")},
		{name: "one port out of bounds", argv: "open-port 65536", want: usageErr("port range bounds must be between 0 and 65535, got 65536-65536")},
		{name: "not a number", argv: "open-port http", want: usageErr(`invalid port range "http"`)},
		{name: "icmp with a port", argv: "open-port 8/icmp", want: usageErr("invalid port range 8/icmp")},
		{name: "two ports", argv: "open-port 80 443", want: usageErr(`unrecognized args: ["443"]`)},
		{name: "unknown endpoint", argv: "open-port --endpoints db,nope 80", want: runErr(`unknown endpoint "nope"`)},
	})
}

func TestClosePort(t *testing.T) {
	runPortCases(t, []portCase{
		{name: "close committed", committed: []hooktools.PortRange{htTCP(80, 80), htTCP(443, 443)}, argv: "close-port 80", want: ok(""),
			pending: hooktools.PortChanges{Close: []hooktools.PortRange{htTCP(80, 80)}}},
		{name: "close every endpoint's", committed: []hooktools.PortRange{onEndpoint("cluster", htTCP(80, 80)), onEndpoint("db", htTCP(80, 80))},
			argv: "close-port 80/tcp", want: ok(""),
			pending: hooktools.PortChanges{Close: []hooktools.PortRange{onEndpoint("cluster", htTCP(80, 80)), onEndpoint("db", htTCP(80, 80))}}},
		{name: "close one endpoint's", committed: []hooktools.PortRange{onEndpoint("cluster", htTCP(80, 80)), onEndpoint("db", htTCP(80, 80))},
			argv: "close-port --endpoints db 80", want: ok(""), pending: hooktools.PortChanges{Close: []hooktools.PortRange{onEndpoint("db", htTCP(80, 80))}}},
		{name: "closing one endpoint leaves open-for-all", committed: []hooktools.PortRange{htTCP(80, 80)}, argv: "close-port --endpoints db 80", want: ok("")},
		{name: "close what is not open", argv: "close-port 22", want: ok("")},
		{name: "open then close in one hook", before: []string{"open-port 9000"}, argv: "close-port 9000", want: ok("")},
		{name: "close then reopen in one hook", committed: []hooktools.PortRange{htICMP}, before: []string{"close-port icmp"}, argv: "open-port ICMP", want: ok("")},
		{name: "no port", argv: "close-port", want: usageErr("no port or range specified")},
		{name: "bad protocol", argv: "close-port 80/xyz", want: usageErr(`invalid protocol "xyz", expected "tcp", "udp", or "icmp"`)},
	})
}

func TestOpenedPorts(t *testing.T) {
	committed := []hooktools.PortRange{htTCP(8000, 8010), onEndpoint("db", htTCP(10, 20)), onEndpoint("cluster", htTCP(10, 20))}
	runPortCases(t, []portCase{
		{name: "none", argv: "opened-ports", want: ok("")},
		{name: "none json (ops)", argv: "opened-ports --format=json", want: ok("[]\n")},
		{name: "committed plus pending, sorted by protocol then port", committed: committed,
			before: []string{"open-port 53/udp", "open-port icmp", "open-port 80"},
			argv:   "opened-ports", want: ok("icmp\n10-20/tcp\n80/tcp\n8000-8010/tcp\n53/udp\n"),
			pending: hooktools.PortChanges{Open: []hooktools.PortRange{htICMP, htTCP(80, 80), {Protocol: "udp", From: 53, To: 53}}}},
		{name: "json (charmhelpers)", committed: committed, argv: "opened-ports --format=json", want: ok(`["10-20/tcp","8000-8010/tcp"]` + "\n")},
		{name: "endpoints", committed: committed, before: []string{"close-port 8000-8010", "open-port --endpoints db 8000-8010"},
			argv: "opened-ports --endpoints", want: ok("10-20/tcp (cluster, db)\n8000-8010/tcp (db)\n"),
			pending: hooktools.PortChanges{Open: []hooktools.PortRange{onEndpoint("db", htTCP(8000, 8010))}, Close: []hooktools.PortRange{htTCP(8000, 8010)}}},
		{name: "endpoints, open for all", committed: []hooktools.PortRange{htTCP(80, 80)}, argv: "opened-ports --endpoints --format=json", want: ok(`["80/tcp (*)"]` + "\n")},
		{name: "leftover argument", argv: "opened-ports 80", want: usageErr(`unrecognized args: ["80"]`)},
	})
}

func TestPortsReadOncePerHookAndErrors(t *testing.T) {
	h := networkContext(t, testNetwork, htTCP(80, 80))
	for _, call := range []string{"opened-ports", "open-port 81", "close-port 80", "opened-ports"} {
		h.run(t, nil, argv(call)...)
	}
	if n := h.ports.Reads(); n != 1 {
		t.Errorf("%d reads of the committed ports in one hook, want 1", n)
	}
	if got := h.run(t, nil, "opened-ports"); got != ok("81/tcp\n") {
		t.Errorf("opened-ports after the changes: %+v", got)
	}
	h.done()
	if _, found := h.srv.PendingPorts(h.id); found {
		t.Error("pending ports outlive the hook's context")
	}

	failing := networkContext(t, testNetwork)
	failing.ports.FailWith(errors.New("controller unreachable"))
	if got := failing.run(t, nil, "open-port", "80"); got != runErr("cannot read opened ports: controller unreachable") {
		t.Errorf("open-port with the controller down: %+v", got)
	}
	if pending, _ := failing.srv.PendingPorts(failing.id); !pending.Empty() {
		t.Errorf("a failed open-port left %+v pending", pending)
	}
}
