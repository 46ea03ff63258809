package tests

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/agent"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// portsCall is one recorded tool call of testcharms/ports-bash.
type portsCall struct{ out, err, rc string }

func readPortsCall(t *testing.T, u *agentUnit, run, name string) portsCall {
	t.Helper()
	read := func(ext string) string {
		data, err := os.ReadFile(u.path("charm", "results", run, name+"."+ext))
		if err != nil {
			t.Fatalf("%s %s/%s: %v", u.unit, run, name, err)
		}
		return string(data)
	}
	return portsCall{out: read("out"), err: read("err"), rc: strings.TrimSpace(read("rc"))}
}

// TestPortsBashCharm runs two units of testcharms/ports-bash under real
// agents and a real controller: ports opened by install are committed and
// shown by `uniter status`, the changes of a config-changed that failed
// are discarded (its own opened-ports saw them) and its retry's are
// committed; network-get and unit-get answer agent.yaml's address on the
// unit that has one and the host's primary address on the other; bad forms
// get Juju's texts and exit codes from real hooks.
func TestPortsBashCharm(t *testing.T) {
	c := startCluster(t, 1)
	const configured = "10.20.30.40"
	var units []*agentUnit
	for i, addr := range []string{configured, ""} {
		u := c.addUnit("ports-bash/"+string(rune('0'+i)), "ports-bash", func(cfg *agent.Config) {
			cfg.RetryInitial = agent.Duration(200 * time.Millisecond)
			cfg.StopTimeout = agent.Duration(10 * time.Second)
			cfg.Address = addr
		})
		u.start()
		units = append(units, u)
	}
	testutil.WaitUntil(t, 60*time.Second, "both units to be active", func() bool {
		st := cliStatus(c)
		for _, u := range units {
			us := st.Applications["ports-bash"].Units[u.unit]
			if us.Workload.Status != "active" || us.Agent.Status != "idle" {
				return false
			}
		}
		return true
	})

	st := cliStatus(c)
	for _, u := range units {
		if diff := cmp.Diff([]string{"80/tcp", "443/tcp", "8000-8010/udp"}, st.Applications["ports-bash"].Units[u.unit].OpenPorts); diff != "" {
			t.Errorf("%s open_ports in status --format json (-want +got):\n%s", u.unit, diff)
		}
	}
	u0 := units[0]
	for _, tc := range []struct {
		run, name string
		want      portsCall
	}{
		{"install.1", "open-80", portsCall{"", "", "0"}},
		{"install.1", "open-again", portsCall{"", "", "0"}},
		{"install.1", "open-bad-proto", portsCall{"", `ERROR invalid protocol "sctp", expected "tcp", "udp", or "icmp"` + "\n", "2"}},
		{"install.1", "open-bad-range", portsCall{"", "ERROR invalid port range 20-10/tcp\n", "2"}},
		{"install.1", "open-unknown-endpoint", portsCall{"", `ERROR unknown endpoint "nope"` + "\n", "1"}},
		{"install.1", "opened-endpoints", portsCall{"icmp (*)\n80/tcp (*)\n443/tcp (website)\n8000-8010/udp (*)\n", "", "0"}},
		// The failing run saw its own changes; none of them were kept.
		{"config-changed.1", "opened-in-failing", portsCall{`["icmp","443/tcp","9999/tcp","8000-8010/udp"]` + "\n", "", "0"}},
		{"config-changed.2", "opened-at-retry", portsCall{`["icmp","80/tcp","443/tcp","8000-8010/udp"]` + "\n", "", "0"}},
		{"start.1", "opened-json", portsCall{`["80/tcp","443/tcp","8000-8010/udp"]` + "\n", "", "0"}},
		{"start.1", "unit-get-private", portsCall{configured + "\n", "", "0"}},
		{"start.1", "unit-get-public-json", portsCall{`"` + configured + `"` + "\n", "", "0"}},
		{"start.1", "network-get-juju-info-ingress", portsCall{configured + "\n", "", "0"}},
		{"start.1", "network-get-unknown", portsCall{"", `ERROR no network config found for binding "nope"` + "\n", "1"}},
	} {
		if got := readPortsCall(t, u0, tc.run, tc.name); got != tc.want {
			t.Errorf("%s %s: got %+v, want %+v", tc.run, tc.name, got, tc.want)
		}
	}
	if _, err := os.Stat(u0.path("charm", "results", "config-changed.3")); err == nil {
		t.Error("config-changed ran a third time")
	}

	// network-get as ops parses it: the configured address with a host
	// prefix (no interface has it); the other unit's is the host's own.
	type netInfo struct {
		Bind []struct {
			Addresses []struct{ Value, CIDR string }
		} `json:"bind-addresses"`
		Ingress []string `json:"ingress-addresses"`
		Egress  []string `json:"egress-subnets"`
	}
	netOf := func(u *agentUnit) netInfo {
		var n netInfo
		if err := json.Unmarshal([]byte(readPortsCall(t, u, "start.1", "network-get-json").out), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Bind) != 1 || len(n.Bind[0].Addresses) != 1 {
			t.Fatalf("%s network-get: %+v", u.unit, n)
		}
		return n
	}
	if n := netOf(u0); n.Bind[0].Addresses[0].Value != configured || n.Bind[0].Addresses[0].CIDR != configured+"/32" ||
		!slices.Equal(n.Ingress, []string{configured}) || !slices.Equal(n.Egress, []string{configured + "/32"}) {
		t.Errorf("network-get of %s: %+v", u0.unit, n)
	}
	n1 := netOf(units[1])
	host, err := netip.ParseAddr(n1.Bind[0].Addresses[0].Value)
	if err != nil {
		t.Fatalf("the default address: %v", err)
	}
	if cidr, err := netip.ParsePrefix(n1.Bind[0].Addresses[0].CIDR); err != nil || !cidr.Contains(host) {
		t.Errorf("the default address %s is not in its cidr %q", host, n1.Bind[0].Addresses[0].CIDR)
	}
	if got := readPortsCall(t, units[1], "start.1", "unit-get-private").out; got != host.String()+"\n" || host.String() == configured {
		t.Errorf("unit-get on the unit without an address: %q, network-get %s", got, host)
	}

	// The table shows the ports too.
	table := c.run("status")
	if !regexp.MustCompile(`(?m)^ports-bash/0\*?\s+idle\s+active\s+-\s+80/tcp,443/tcp,8000-8010/udp\s+serving$`).MatchString(table.stdout) {
		t.Errorf("status table:\n%s", table.stdout)
	}
	// The agent said what it committed.
	if log, _ := os.ReadFile(filepath.Join(u0.dir, "agent.out")); !strings.Contains(string(log), "committed opened ports") {
		t.Error("the agent log has no committed opened ports line")
	}
}

// buildProtocol4 builds the uniter binary as the release before opened
// ports: the same code with its protocol range narrowed to 1..4.
func buildProtocol4(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "uniter-p4")
	pkg := "github.com/uniter-dev/uniter/internal/version"
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "-ldflags", "-X "+pkg+".ProtocolMax=4", "../cmd/uniter")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the protocol-4 uniter: %v\n%s", err, out)
	}
	return bin
}

// TestPortsCommitRefusedFailsTheHook: on a controller that runs protocol
// 4, a hook's port commit is refused, so the hook fails clearly and
// nothing is recorded; once the controller is upgraded to this release
// (protocol 5 or later) the retried hook commits its ports.
func TestPortsCommitRefusedFailsTheHook(t *testing.T) {
	c := startClusterWith(t, 1, buildProtocol4(t))
	u := c.addUnit("ports-bash/0", "ports-bash", func(cfg *agent.Config) {
		cfg.RetryInitial, cfg.RetryMax = agent.Duration(200*time.Millisecond), agent.Duration(time.Second)
		cfg.StopTimeout = agent.Duration(10 * time.Second)
	})
	u.start()
	testutil.WaitUntil(t, 60*time.Second, "install to fail", func() bool {
		us := cliStatus(c).Applications["ports-bash"].Units[u.unit]
		return us.Agent.Status == "error" && us.Agent.Message == `hook failed: "install"`
	})
	if p := cliStatus(c).Applications["ports-bash"].Units[u.unit].OpenPorts; p != nil {
		t.Errorf("ports recorded at protocol 4: %v", p)
	}
	log, _ := os.ReadFile(u.path("agent.out"))
	if !strings.Contains(string(log), `cannot commit opened ports of hook \"install\"`) ||
		!strings.Contains(string(log), "opened ports (set-unit-ports) needs cluster protocol 5; the cluster runs 4") {
		t.Errorf("the agent log does not say why install failed:\n%s", tail(string(log), 3000))
	}

	// The upgrade: the node restarts with this release and raises the
	// cluster past protocol 5; the retried install commits.
	c.nodes[0].p.stop(syscall.SIGTERM)
	c.start(0)
	testutil.WaitUntil(t, 60*time.Second, "the unit to be active with its ports", func() bool {
		st := cliStatus(c)
		us := st.Applications["ports-bash"].Units[u.unit]
		return st.Controller.EffectiveVersion >= 5 && us.Workload.Status == "active" && // ports need 5; the release speaks more
			slices.Equal(us.OpenPorts, []string{"80/tcp", "443/tcp", "8000-8010/udp"})
	})
}

// TestUnitAddAddress: `uniter unit add --address` writes the unit's
// address into agent.yaml; a malformed one is a usage error and nothing
// is registered.
func TestUnitAddAddress(t *testing.T) {
	c := startCluster(t, 1)
	charm := filepath.Join("..", "testcharms", "ports-bash")
	dir := filepath.Join(c.root, "units", "ports-bash-0")
	bad := c.run("unit", "add", "ports-bash/1", "--charm", charm, "--agent-dir", dir+"-bad", "--address", "10.0.0.5:80")
	if bad.code != 2 || !strings.Contains(bad.stderr, `--address must be an IP address, got "10.0.0.5:80"`) {
		t.Errorf("unit add --address 10.0.0.5:80: exit %d, %s", bad.code, bad.stderr)
	}
	if res := c.run("unit", "add", "ports-bash/0", "--charm", charm, "--agent-dir", dir, "--address", "fd00::7"); res.code != 0 {
		t.Fatalf("unit add --address: exit %d: %s", res.code, res.stderr)
	}
	cfg, err := agent.ReadConfig(dir)
	if err != nil || cfg.Address != "fd00::7" {
		t.Errorf("agent.yaml address %q, %v", cfg.Address, err)
	}
	if _, ok := cliStatus(c).Applications["ports-bash"].Units["ports-bash/1"]; ok {
		t.Error("the unit with the bad address was registered")
	}
}

// TestPortsPythonCharm runs testcharms/ports-python under a real agent:
// its install hook calls the network and port tools exactly as ops 3.x,
// ops 2.x and charmhelpers do and parses their output as they do; the
// parsed values are what those libraries would hand a charm, and the ports
// are committed.
func TestPortsPythonCharm(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	c := startCluster(t, 1)
	u := c.addUnit("ports-python/0", "ports-python", func(cfg *agent.Config) {
		cfg.StopTimeout = agent.Duration(10 * time.Second)
		cfg.Address = "10.44.0.9"
	})
	u.start()
	testutil.WaitUntil(t, 60*time.Second, "the unit to be active", func() bool {
		us := cliStatus(c).Applications["ports-python"].Units[u.unit]
		return us.Workload.Status == "active" && us.Agent.Status == "idle"
	})
	data, err := os.ReadFile(u.path("charm", "results", "install.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Values map[string]any `json:"values"`
		Error  *string        `json:"error"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Error != nil {
		t.Fatalf("install failed: %s\n%s", *res.Error, data)
	}
	network := map[string]any{"interface": "", "address": "10.44.0.9", "subnet": "10.44.0.9/32",
		"ingress": []any{"10.44.0.9"}, "egress": []any{"10.44.0.9/32"}}
	want := map[string]any{
		"ops3-opened":                  []any{[]any{"icmp", nil}, []any{"tcp", 80.0}},
		"ops3-network":                 network,
		"ops2-network":                 network,
		"charmhelpers-opened":          []any{"icmp", "80/tcp", "8000-8010/udp"},
		"charmhelpers-private-address": "10.44.0.9",
		"charmhelpers-primary-address": "10.44.0.9",
		"charmhelpers-no-binding":      true,
	}
	if diff := cmp.Diff(want, res.Values); diff != "" {
		t.Errorf("what the libraries made of the tools' output (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"icmp", "80/tcp", "8000-8010/udp"}, cliStatus(c).Applications["ports-python"].Units[u.unit].OpenPorts); diff != "" {
		t.Errorf("open_ports (-want +got):\n%s", diff)
	}
}

// TestPortsFromActionsAndExec: an action or exec that exits 0 has its
// open-port committed like a hook's; one that exits 1 has it dropped
// (HOOK-TOOLS.md §6, "Commit rule").
func TestPortsFromActionsAndExec(t *testing.T) {
	c := startCluster(t, 1)
	u := c.addUnit("ports-bash/0", "ports-bash", nil)
	u.start()
	testutil.WaitUntil(t, 60*time.Second, "the unit to be idle", func() bool {
		return cliStatus(c).Applications["ports-bash"].Units[u.unit].Agent.Status == "idle"
	})
	opened := func() []string { return cliStatus(c).Applications["ports-bash"].Units[u.unit].OpenPorts }
	before := opened()

	if r := c.run("run", u.unit, "open", "port=9000/tcp"); r.code != 0 || !strings.Contains(r.stdout, "9000/tcp") {
		t.Fatalf("run open 9000: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("run", u.unit, "open", "port=9001/tcp", "fail=true"); r.code != 1 {
		t.Fatalf("run open 9001 fail=true: exit %d, want 1: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := c.runExec([]string{"--unit", u.unit}, "open-port 9002/udp"); r.code != 0 {
		t.Fatalf("exec open-port: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := c.runExec([]string{"--unit", u.unit}, "open-port 9003/udp; exit 1"); r.code != 1 {
		t.Fatalf("exec open-port; exit 1: exit %d, want 1: %s\n%s", r.code, r.stdout, r.stderr)
	}
	want := append(slices.Clone(before), "9000/tcp", "9002/udp")
	slices.SortFunc(want, comparePortStrings)
	got := slices.SortedFunc(slices.Values(opened()), comparePortStrings)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("open ports after the actions and execs (-want +got):\n%s", diff)
	}
}

// comparePortStrings orders "PORT[-TO]/PROTO" as status does: by
// protocol, then port.
func comparePortStrings(a, b string) int {
	key := func(s string) (string, int) {
		r, proto, _ := strings.Cut(s, "/")
		from, _, _ := strings.Cut(r, "-")
		n := 0
		for _, ch := range from {
			n = n*10 + int(ch-'0')
		}
		return proto, n
	}
	pa, na := key(a)
	pb, nb := key(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	return na - nb
}
