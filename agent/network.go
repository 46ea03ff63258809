package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/uniter-dev/uniter/hooktools"
)

// routeProbe is where the agent "dials" (UDP: nothing is sent) to learn
// which source address the host's default route gives: an address of the
// documentation range, never a real host.
const routeProbe = "192.0.2.1:9"

// hostInterface is one network interface of the host that is up, with
// its addresses.
type hostInterface struct {
	Name, MAC string
	Addrs     []netip.Prefix
	Loopback  bool
}

// interfaceLister returns the host's interfaces.
type interfaceLister func() ([]hostInterface, error)

// systemInterfaces is the host's interfaces, as the kernel reports them.
func systemInterfaces() ([]hostInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []hostInterface
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		hi := hostInterface{Name: i.Name, MAC: i.HardwareAddr.String(), Loopback: i.Flags&net.FlagLoopback != 0}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(ipn.IP)
				ones, _ := ipn.Mask.Size()
				hi.Addrs = append(hi.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
			}
		}
		out = append(out, hi)
	}
	return out, nil
}

// defaultRouteSource is the source address of the host's default route, by
// a UDP "dial" that sends nothing.
func defaultRouteSource() (netip.Addr, error) {
	c, err := net.Dial("udp", routeProbe)
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, errors.New("no local UDP address")
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok || ip.Unmap().IsUnspecified() {
		return netip.Addr{}, errors.New("no source address")
	}
	return ip.Unmap(), nil
}

// unitNetwork is the address network-get and unit-get answer: configured
// (agent.yaml address) if set, else the source address of the default
// route, else the first non-loopback interface address (IPv4 first), else
// 127.0.0.1; with the subnet, name and MAC of the interface that has it
// (the address as a host prefix when none has it).
func unitNetwork(configured string, route func() (netip.Addr, error), list interfaceLister) (hooktools.Network, error) {
	ifs, _ := list() // without them the address still answers
	var addr netip.Addr
	switch {
	case configured != "":
		a, err := netip.ParseAddr(configured)
		if err != nil {
			return hooktools.Network{}, fmt.Errorf("cannot use address %q: %w", configured, err)
		}
		addr = a.Unmap()
	default:
		if a, err := route(); err == nil {
			addr = a
		} else if a, ok := firstInterfaceAddr(ifs); ok {
			addr = a
		} else {
			addr = netip.MustParseAddr("127.0.0.1")
		}
	}
	n := hooktools.Network{Address: addr.String(), CIDR: netip.PrefixFrom(addr, addr.BitLen()).String()}
	for _, i := range ifs {
		for _, p := range i.Addrs {
			if p.Addr() == addr {
				n.CIDR, n.Interface, n.MAC = p.Masked().String(), i.Name, i.MAC
				return n, nil
			}
		}
	}
	return n, nil
}

// firstInterfaceAddr is the first global address of a non-loopback
// interface, IPv4 before IPv6.
func firstInterfaceAddr(ifs []hostInterface) (netip.Addr, bool) {
	for _, v4 := range []bool{true, false} {
		for _, i := range ifs {
			if i.Loopback {
				continue
			}
			for _, p := range i.Addrs {
				a := p.Addr()
				if a.Is4() == v4 && a.IsGlobalUnicast() {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}
