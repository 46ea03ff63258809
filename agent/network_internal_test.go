package agent

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooktools"
)

func TestUnitNetwork(t *testing.T) {
	pfx := netip.MustParsePrefix
	lo := hostInterface{Name: "lo", Loopback: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}}
	eth := hostInterface{Name: "eth0", MAC: "52:54:00:12:34:56", Addrs: []netip.Prefix{pfx("fe80::1/64"), pfx("10.1.2.3/24"), pfx("fd00::3/64")}}
	v6only := hostInterface{Name: "eth1", MAC: "52:54:00:00:00:01", Addrs: []netip.Prefix{pfx("fe80::2/64"), pfx("fd00::9/64")}}
	route := func(a string) func() (netip.Addr, error) {
		return func() (netip.Addr, error) { return netip.MustParseAddr(a), nil }
	}
	noRoute := func() (netip.Addr, error) { return netip.Addr{}, errors.New("network is unreachable") }
	ifaces := func(ifs ...hostInterface) interfaceLister { return func() ([]hostInterface, error) { return ifs, nil } }
	for _, tc := range []struct {
		name       string
		configured string
		route      func() (netip.Addr, error)
		ifs        interfaceLister
		want       hooktools.Network
	}{
		{"the default route's source", "", route("10.1.2.3"), ifaces(lo, eth),
			hooktools.Network{Address: "10.1.2.3", CIDR: "10.1.2.0/24", Interface: "eth0", MAC: "52:54:00:12:34:56"}},
		{"configured, on an interface", "fd00::3", route("10.1.2.3"), ifaces(lo, eth),
			hooktools.Network{Address: "fd00::3", CIDR: "fd00::/64", Interface: "eth0", MAC: "52:54:00:12:34:56"}},
		{"configured, on no interface", "192.168.7.7", route("10.1.2.3"), ifaces(lo, eth),
			hooktools.Network{Address: "192.168.7.7", CIDR: "192.168.7.7/32"}},
		{"no route: the first non-loopback IPv4", "", noRoute, ifaces(lo, v6only, eth),
			hooktools.Network{Address: "10.1.2.3", CIDR: "10.1.2.0/24", Interface: "eth0", MAC: "52:54:00:12:34:56"}},
		{"no route, IPv6 only: its global address", "", noRoute, ifaces(lo, v6only),
			hooktools.Network{Address: "fd00::9", CIDR: "fd00::/64", Interface: "eth1", MAC: "52:54:00:00:00:01"}},
		{"nothing but loopback", "", noRoute, ifaces(lo),
			hooktools.Network{Address: "127.0.0.1", CIDR: "127.0.0.0/8", Interface: "lo"}},
		{"no interfaces at all", "", noRoute, func() ([]hostInterface, error) { return nil, errors.New("no netlink") },
			hooktools.Network{Address: "127.0.0.1", CIDR: "127.0.0.1/32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unitNetwork(tc.configured, tc.route, tc.ifs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := unitNetwork("not-an-ip", noRoute, ifaces(lo)); err == nil {
		t.Error("a malformed configured address was accepted")
	}
}

// TestHostNetwork: on this host the default lookups find an address that
// one of its interfaces has, or loopback.
func TestHostNetwork(t *testing.T) {
	n, err := unitNetwork("", defaultRouteSource, systemInterfaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netip.ParseAddr(n.Address); err != nil || n.CIDR == "" {
		t.Fatalf("host network %+v", n)
	}
	if p, err := netip.ParsePrefix(n.CIDR); err != nil || !p.Contains(netip.MustParseAddr(n.Address)) {
		t.Errorf("cidr %q does not hold address %q", n.CIDR, n.Address)
	}
}
