package controller_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/controller"
	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

func apiTCP(from, to int) api.PortRange {
	return api.PortRange{Protocol: api.PortTCP, From: from, To: to}
}

// TestUnitPortsAPI: a unit commits the ports its hook opened and closed,
// reads them back sorted, and status shows them once each; the limit
// holds at exactly MaxUnitPortRanges and refuses one more, naming it; bad
// ranges and endpoints are refused; another unit may neither read nor
// write them.
func TestUnitPortsAPI(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{})
	waitVersion(t, c, lease.MaxProtocol) // the binary's newest: ports need 5
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	op := newClient(t, admin, c.APIAddr())
	if err := op.Register(ctx, api.RegisterUnitRequest{Unit: "db/0", Token: tokDB0,
		Endpoints: map[string]api.Endpoint{"server": {Role: api.RoleProvider, Interface: "pgsql"}}}); err != nil {
		t.Fatal(err)
	}
	db0 := newClient(t, tokDB0, c.APIAddr())
	if got, err := db0.OpenedPorts(ctx, "db/0"); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("ports before any: %#v, %v", got, err)
	}
	udp := api.PortRange{Protocol: api.PortUDP, From: 8000, To: 8010}
	icmp := api.PortRange{Protocol: api.PortICMP}
	server80 := api.PortRange{Endpoint: "server", Protocol: api.PortTCP, From: 80, To: 80}
	info9000 := api.PortRange{Endpoint: "juju-info", Protocol: api.PortTCP, From: 9000, To: 9000}
	if err := db0.SetUnitPorts(ctx, "db/0", []api.PortRange{udp, apiTCP(22, 22), icmp, server80, info9000}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db0.SetUnitPorts(ctx, "db/0", []api.PortRange{apiTCP(80, 80)}, []api.PortRange{apiTCP(22, 22)}); err != nil {
		t.Fatal(err)
	}
	got, err := db0.OpenedPorts(ctx, "db/0")
	if err != nil {
		t.Fatal(err)
	}
	// 80/tcp for all endpoints replaced the server endpoint's.
	if diff := cmp.Diff([]api.PortRange{icmp, apiTCP(80, 80), info9000, udp}, got); diff != "" {
		t.Errorf("opened ports (-want +got):\n%s", diff)
	}
	st, err := op.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"icmp", "80/tcp", "9000/tcp", "8000-8010/udp"}, st.Applications["db"].Units["db/0"].OpenPorts); diff != "" {
		t.Errorf("status open ports (-want +got):\n%s", diff)
	}
	if p := st.Applications["db"].Units["db/1"].OpenPorts; p != nil {
		t.Errorf("db/1 shows ports %v", p)
	}

	// The limit: 4 open, 96 more is exactly the limit, then one more is refused.
	var more []api.PortRange
	for i := range controller.MaxUnitPortRanges - 4 {
		more = append(more, apiTCP(10000+i, 10000+i))
	}
	if err := db0.SetUnitPorts(ctx, "db/0", more, nil); err != nil {
		t.Fatalf("up to the limit: %v", err)
	}
	err = db0.SetUnitPorts(ctx, "db/0", []api.PortRange{apiTCP(20000, 20000)}, nil)
	if !errors.Is(err, api.ErrLimitExceeded) || !strings.Contains(err.Error(), fmt.Sprintf("would have %d port ranges open after this change; the limit is %d",
		controller.MaxUnitPortRanges+1, controller.MaxUnitPortRanges)) {
		t.Errorf("one over the limit: %v", err)
	}
	// Closing one and opening another at the limit is fine.
	if err := db0.SetUnitPorts(ctx, "db/0", []api.PortRange{apiTCP(20000, 20000)}, []api.PortRange{icmp}); err != nil {
		t.Errorf("swap at the limit: %v", err)
	}

	raw := newRaw(t, c.APIAddr())
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown protocol", `{"open":[{"protocol":"sctp","from":1,"to":1}]}`, `invalid protocol \"sctp\"`},
		{"reversed", `{"open":[{"protocol":"tcp","from":20,"to":10}]}`, "invalid port range 20-10/tcp"},
		{"out of bounds", `{"close":[{"protocol":"udp","from":1,"to":70000}]}`, "port range bounds must be between 0 and 65535, got 1-70000"},
		{"icmp with ports", `{"open":[{"protocol":"icmp","from":8,"to":8}]}`, "icmp takes no ports"},
		{"unknown endpoint", `{"open":[{"endpoint":"nope","protocol":"tcp","from":1,"to":1}]}`, `application db has no endpoint \"nope\"`},
	} {
		r := raw.json(http.MethodPost, "/v1/units/db/0/ports", tokDB0, tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.name, r.status, r.body, tc.want)
		}
	}
	// Another unit's token may neither read nor write db/0's ports.
	for _, r := range []rawResp{
		raw.json(http.MethodGet, "/v1/units/db/0/ports", tokDB1, ""),
		raw.json(http.MethodPost, "/v1/units/db/0/ports", tokDB1, `{"close":[{"protocol":"tcp","from":80,"to":80}]}`),
		raw.json(http.MethodPost, "/v1/units/db/0/ports", tokWeb, `{"close":[{"protocol":"tcp","from":80,"to":80}]}`),
	} {
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), "may not act as unit db/0") {
			t.Errorf("another unit: %d %s, want 403", r.status, r.body)
		}
	}
	if got, _ := db0.OpenedPorts(ctx, "db/0"); len(got) != controller.MaxUnitPortRanges || got[0] != apiTCP(80, 80) {
		t.Errorf("after the refusals: %d ranges, first %+v", len(got), got[0])
	}
}

// TestUnitPortsNeedProtocol5: a cluster at protocol 4 refuses the commit
// with needs-protocol and reads no ports.
func TestUnitPortsNeedProtocol5(t *testing.T) {
	c, admin := bootstrap(t, nodeOpts{protoMax: 4})
	waitVersion(t, c, 4)
	seed(t, c.APIAddr(), admin)
	ctx := ctxTimeout(t, 30*time.Second)
	db0 := newClient(t, tokDB0, c.APIAddr())
	err := db0.SetUnitPorts(ctx, "db/0", []api.PortRange{apiTCP(80, 80)}, nil)
	if !errors.Is(err, api.ErrNeedsProtocol) || !strings.Contains(err.Error(), "opened ports (set-unit-ports) needs cluster protocol 5; the cluster runs 4") {
		t.Errorf("set ports at protocol 4: %v", err)
	}
	if got, err := db0.OpenedPorts(ctx, "db/0"); err != nil || len(got) != 0 {
		t.Errorf("ports at protocol 4: %v, %v", got, err)
	}
}

// TestUnitPortsReadThroughAFollower: what a unit committed through a
// follower, it reads back at once through that follower (the leader
// answers), as its next hook must.
func TestUnitPortsReadThroughAFollower(t *testing.T) {
	nodes, admin, _ := startCluster(t)
	for _, n := range nodes {
		waitVersion(t, n, lease.MaxProtocol) // the binary's newest: ports need 5
	}
	leader, follower, _ := roles(t, nodes)
	seed(t, leader.APIAddr(), admin)
	ctx := ctxTimeout(t, 60*time.Second)
	db0 := newClient(t, tokDB0, follower.APIAddr())
	for i := range 20 {
		if err := db0.SetUnitPorts(ctx, "db/0", []api.PortRange{apiTCP(1000+i, 1000+i)}, []api.PortRange{apiTCP(999+i, 999+i)}); err != nil {
			t.Fatal(err)
		}
		got, err := db0.OpenedPorts(ctx, "db/0")
		if err != nil || len(got) != 1 || got[0] != apiTCP(1000+i, 1000+i) {
			t.Fatalf("read after commit %d through a follower: %v, %v", i, got, err)
		}
	}
}
