package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/uniter-dev/uniter/agent"
)

// agentV1 is an agent.yaml as uniter wrote it before version 2.
const agentV1 = `version: 1
unit: db/0
controller:
    addresses:
        - 127.0.0.1:17070
    token: 0123456789abcdef0123456789abcdef
charm-dir: /srv/db-0/charm
hook-timeout: 30m0s
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestConfigMigratesVersion1: the token moves to its own 0600 file, the
// old agent.yaml is kept as agent.yaml.v1.bak, and every setting is kept.
func TestConfigMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	writeFile(t, path, agentV1)
	c, err := agent.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != agent.ConfigVersion || c.Unit != "db/0" || c.Controller.Token != "0123456789abcdef0123456789abcdef" ||
		len(c.Controller.Addresses) != 1 || c.CharmDir != "/srv/db-0/charm" || time.Duration(c.HookTimeout) != 30*time.Minute {
		t.Fatalf("migrated config %+v", c)
	}
	if got := readFile(t, path+".v1.bak"); got != agentV1 {
		t.Fatalf("backup %q, want the old file", got)
	}
	now := readFile(t, path)
	if !strings.HasPrefix(now, "version: 2\n") || strings.Contains(now, "token") || strings.Contains(now, "machine-lock") {
		t.Fatalf("migrated agent.yaml (no token, no filled-in defaults):\n%s", now)
	}
	tokenPath := filepath.Join(dir, agent.TokenFile)
	if got := readFile(t, tokenPath); got != "0123456789abcdef0123456789abcdef\n" {
		t.Fatalf("token file %q", got)
	}
	for _, p := range []string{path, path + ".v1.bak", tokenPath} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, m)
		}
	}
	again, err := agent.ReadConfig(dir)
	if err != nil || again.Controller.Token != c.Controller.Token || again.CharmDir != c.CharmDir {
		t.Fatalf("second read %+v, %v", again, err)
	}
	if readFile(t, path) != now {
		t.Fatal("a second read rewrote agent.yaml")
	}
}

// TestConfigRefusesUntouched: a file from a newer uniter, or a version-2
// file with the token inside, is refused; nothing is written.
func TestConfigRefusesUntouched(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"future", "version: 3\nunit: db/0\ncontroller: {addresses: [a:1]}\nsecrets: {token-ref: vault}\n", "upgrade uniter"},
		{"token in version 2", "version: 2\nunit: db/0\ncontroller: {addresses: [a:1], token: abc}\n", "controller.token is not allowed"},
		{"bad version 1", "version: 1\nunit: db\ncontroller: {addresses: [a:1], token: abc}\n", "bad unit name"},
		{"metrics on every interface", "version: 2\nunit: db/0\ncontroller: {addresses: [a:1]}\nmetrics-addr: 0.0.0.0:9100\n",
			"metrics-addr: bad metrics address"},
		{"relative metrics socket", "version: 2\nunit: db/0\ncontroller: {addresses: [a:1]}\nmetrics-addr: unix:m.sock\n",
			"must be absolute"},
		{"address with a port", "version: 2\nunit: db/0\ncontroller: {addresses: [a:1]}\naddress: 10.0.0.5:80\n",
			`address: "10.0.0.5:80" is not an IP address`},
		{"address by name", "version: 2\nunit: db/0\ncontroller: {addresses: [a:1]}\naddress: db.example\n",
			`address: "db.example" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "agent.yaml")
			writeFile(t, path, tc.content)
			_, err := agent.ReadConfig(dir)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadConfig = %v, want an error naming %s and saying %q", err, path, tc.want)
			}
			if readFile(t, path) != tc.content {
				t.Fatal("the file was changed")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("directory holds %d entries, want only agent.yaml", len(entries))
			}
		})
	}
}

// TestConfigWriteKeepsTokenOut: WriteConfig puts the token in its file
// and removes that file when the config has no token.
func TestConfigWriteKeepsTokenOut(t *testing.T) {
	dir := t.TempDir()
	c := agent.Config{Unit: "web/3", Controller: agent.Controller{Addresses: []string{"a:1"}, Token: "tok"}}
	if err := agent.WriteConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(readFile(t, filepath.Join(dir, "agent.yaml")), "tok") {
		t.Fatal("the token is in agent.yaml")
	}
	got, err := agent.ReadConfig(dir)
	if err != nil || got.Controller.Token != "tok" {
		t.Fatalf("ReadConfig = %+v, %v", got, err)
	}
	c.Controller.Token = ""
	if err := agent.WriteConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, agent.TokenFile)); !os.IsNotExist(err) {
		t.Fatalf("token file left behind: %v", err)
	}
}

// TestSetControllerAddressesKeepsTheRest: only the addresses change; the
// token stays in its file and agent.yaml stays 0600.
func TestSetControllerAddressesKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	c := agent.Config{Unit: "web/3", Controller: agent.Controller{Addresses: []string{"a:1"}, Token: "tok"}}
	if err := agent.WriteConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	before, err := agent.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.SetControllerAddresses(dir, []string{"b:2", "c:3"}); err != nil {
		t.Fatal(err)
	}
	got, err := agent.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want.Controller.Addresses = []string{"b:2", "c:3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config after SetControllerAddresses (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(filepath.Join(dir, "agent.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent.yaml mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := agent.SetControllerAddresses(dir, nil); err == nil {
		t.Error("an empty address list was accepted")
	}
}

// TestConfigAddress: an address is read and written back as given; none
// stays none (the agent finds the host's when it starts).
func TestConfigAddress(t *testing.T) {
	for _, addr := range []string{"10.0.0.5", "fd00::5", ""} {
		dir := t.TempDir()
		c := agent.Config{Unit: "web/3", Controller: agent.Controller{Addresses: []string{"a:1"}}, Address: addr}
		if err := agent.WriteConfig(dir, c); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(readFile(t, filepath.Join(dir, "agent.yaml")), "address: "); got != (addr != "") {
			t.Errorf("address %q: agent.yaml mentions an address: %v", addr, got)
		}
		back, err := agent.ReadConfig(dir)
		if err != nil || back.Address != addr {
			t.Errorf("address %q read back as %q, %v", addr, back.Address, err)
		}
	}
}
