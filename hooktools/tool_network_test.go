package hooktools_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
	"github.com/uniter-dev/uniter/hooktools/hooktoolstest"
)

var testNetwork = hooktools.Network{Address: "10.1.2.3", CIDR: "10.1.2.0/24", Interface: "eth0", MAC: "00:16:3e:aa:bb:cc"}

// networkHook is app/0 running config-changed with the bindings db,
// cluster and juju-info, relation db:3, and ports committed.
type networkHook struct {
	*testHook
	ports *hooktoolstest.Ports
}

func networkContext(t *testing.T, network hooktools.Network, committed ...hooktools.PortRange) networkHook {
	t.Helper()
	srv := startServer(t, serverOpts{})
	hc := defaultContext(hooktoolstest.NewBackend(true))
	hc.Relations = []hooktools.Relation{{ID: 3, Endpoint: "db", Key: "app:db mysql:server", RemoteApp: "mysql"}}
	hc.RelationBackend = &hooktoolstest.Relations{}
	hc.Network = network
	hc.Bindings = []string{"cluster", "db", "juju-info"}
	ports := hooktoolstest.NewPorts(committed...)
	hc.PortsBackend = ports
	return networkHook{testHook: srv.register(t, hc), ports: ports}
}

type netCase struct {
	name    string
	network *hooktools.Network // nil: testNetwork
	argv    string
	want    result
}

func runNetCases(t *testing.T, cases []netCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			n := testNetwork
			if tt.network != nil {
				n = *tt.network
			}
			h := networkContext(t, n)
			if diff := cmp.Diff(tt.want, h.run(t, nil, argv(tt.argv)...)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.argv, diff)
			}
		})
	}
}

const networkJSON = `{"bind-addresses":[{"addresses":[{"cidr":"10.1.2.0/24","hostname":"","value":"10.1.2.3"}],` +
	`"interface-name":"eth0","mac-address":"00:16:3e:aa:bb:cc"}],"egress-subnets":["10.1.2.3/32"],"ingress-addresses":["10.1.2.3"]}` + "\n"

const networkYAML = `bind-addresses:
  - addresses:
      - cidr: 10.1.2.0/24
        hostname: ""
        value: 10.1.2.3
    interface-name: eth0
    mac-address: "00:16:3e:aa:bb:cc"
egress-subnets:
  - 10.1.2.3/32
ingress-addresses:
  - 10.1.2.3
`

func TestNetworkGet(t *testing.T) {
	v6 := hooktools.Network{Address: "fd00::5", CIDR: "fd00::/64"}
	runNetCases(t, []netCase{
		{name: "json (ops)", argv: "network-get db --format=json", want: ok(networkJSON)},
		{name: "json, -r first (ops with a relation)", argv: "network-get -r 3 db --format=json", want: ok(networkJSON)},
		{name: "juju-info", argv: "network-get juju-info --format=json", want: ok(networkJSON)},
		{name: "ops with a relation: -r after the binding", argv: "network-get db -r 3 --format=json", want: ok(networkJSON)},
		{name: "charmhelpers: yaml, -r last", argv: "network-get db --format yaml -r db:3", want: ok(networkYAML)},
		{name: "smart is yaml", argv: "network-get cluster", want: ok(networkYAML)},
		{name: "primary address (charmhelpers)", argv: "network-get --primary-address db", want: ok("10.1.2.3\n")},
		{name: "bind address", argv: "network-get db --bind-address", want: ok("10.1.2.3\n")},
		{name: "ingress address json", argv: "network-get db --ingress-address --format=json", want: ok(`"10.1.2.3"` + "\n")},
		{name: "egress subnets", argv: "network-get db --egress-subnets", want: ok("10.1.2.3/32\n")},
		{name: "several flags: a map", argv: "network-get db --bind-address --ingress-address --egress-subnets --format=json",
			want: ok(`{"bind-address":"10.1.2.3","egress-subnets":["10.1.2.3/32"],"ingress-address":"10.1.2.3"}` + "\n")},
		{name: "ipv6 egress", network: &v6, argv: "network-get db --egress-subnets --format=json", want: ok(`["fd00::5/128"]` + "\n")},
		{name: "unknown binding", argv: "network-get nope", want: runErr(`no network config found for binding "nope"`)},
		{name: "no address configured", network: &hooktools.Network{}, argv: "network-get db", want: runErr(`no network config found for binding "db"`)},
		{name: "no binding", argv: "network-get", want: usageErr("no arguments specified")},
		{name: "two bindings", argv: "network-get db cluster", want: usageErr(`unrecognized args: ["cluster"]`)},
		{name: "unknown relation", argv: "network-get -r 9 db", want: usageErr(`invalid value "9" for option -r: relation not found`)},
		{name: "bad relation id", argv: "network-get -r db:x db", want: usageErr(`invalid value "db:x" for option -r: invalid relation id`)},
	})
}

func TestUnitGet(t *testing.T) {
	runNetCases(t, []netCase{
		{name: "private", argv: "unit-get private-address", want: ok("10.1.2.3\n")},
		{name: "public", argv: "unit-get public-address", want: ok("10.1.2.3\n")},
		{name: "json (charmhelpers)", argv: "unit-get --format=json private-address", want: ok(`"10.1.2.3"` + "\n")},
		{name: "flag last", argv: "unit-get public-address --format=yaml", want: ok("10.1.2.3\n")},
		{name: "unknown setting", argv: "unit-get address", want: usageErr(`unknown setting "address"`)},
		{name: "no setting", argv: "unit-get", want: usageErr("no setting specified")},
		{name: "two settings", argv: "unit-get private-address public-address", want: usageErr(`unrecognized args: ["public-address"]`)},
		{name: "no address configured", network: &hooktools.Network{}, argv: "unit-get private-address", want: runErr("private-address not set")},
	})
}

func TestNetworkToolsUnknownFlag(t *testing.T) {
	h := networkContext(t, testNetwork)
	for _, tool := range []string{"network-get", "unit-get", "open-port", "close-port", "opened-ports"} {
		got := h.run(t, nil, tool, "--nope")
		if got.Code != 2 || !strings.HasPrefix(got.Stderr, "ERROR option provided but not defined: --nope\n\nUsage: "+tool) || got.Stdout != "" {
			t.Errorf("%s --nope = %+v", tool, got)
		}
	}
}
