package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/agent/agentmetrics"
	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/osutil"
	"github.com/uniter-dev/uniter/internal/version"
)

// ConfigVersion is the agent.yaml schema this binary writes.
//
// Version 2 moved the unit's secret out of agent.yaml into its own file,
// <agent-dir>/token (0600): agent.yaml is then settings only, safe to show,
// diff or attach to a bug report, and the token can be replaced without
// touching them. A version-1 agent.yaml is migrated when it is read: the
// old file is kept as agent.yaml.v1.bak, the token is written to its file,
// then agent.yaml is rewritten at version 2, each step atomic (a crash in
// between leaves the old file, and the migration runs again).
const ConfigVersion = 2

// TokenFile is the file of an agent directory that holds the unit's token
// (agent.yaml version 2 and later).
const TokenFile = "token"

// Duration is a time.Duration that reads and writes as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q: %w", n.Line, n.Value, err)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Controller says how the agent reaches the controller.
type Controller struct {
	// Addresses are the API addresses (host:port) of controller nodes.
	Addresses []string `yaml:"addresses"`
	// CACert (PEM) or CAFingerprint ("sha256:" and hex) pins the
	// controller's cluster CA: the agent trusts no other (the API is
	// HTTPS only). `uniter unit add` copies both from the client config.
	CACert        string `yaml:"ca-cert,omitempty"`
	CAFingerprint string `yaml:"ca-fingerprint,omitempty"`
	// Token is the unit's secret. Since version 2 it is kept in
	// <agent-dir>/token (0600), never in agent.yaml: ReadConfig fills it
	// in and WriteConfig writes it there.
	Token string `yaml:"token,omitempty"`
}

// ClientConfig is the controller client configuration c describes: its
// addresses, the pinned CA and the unit's token.
func (c Controller) ClientConfig() client.Config {
	cfg := client.Config{Addresses: slices.Clone(c.Addresses), Token: c.Token, CAFingerprint: c.CAFingerprint}
	if c.CACert != "" {
		cfg.CACert = []byte(c.CACert)
	}
	return cfg
}

// Config is the content of <agent-dir>/agent.yaml.
type Config struct {
	Version    int        `yaml:"version"`
	Unit       string     `yaml:"unit"`
	Controller Controller `yaml:"controller"`
	// CharmDir is the unit's own copy of the charm (default <agent-dir>/charm).
	CharmDir string `yaml:"charm-dir,omitempty"`
	// MachineLock is the lock file shared by the machine's agents
	// (default $UNITER_HOME/machine-lock).
	MachineLock string `yaml:"machine-lock,omitempty"`
	ModelName   string `yaml:"model-name,omitempty"`
	ModelUUID   string `yaml:"model-uuid,omitempty"`
	// LeadershipGuarantee is G: how long a true is-leader holds (30s).
	LeadershipGuarantee Duration `yaml:"leadership-guarantee,omitempty"`
	// HookTimeout kills a hook that runs longer (1h).
	HookTimeout Duration `yaml:"hook-timeout,omitempty"`
	// StopTimeout is how long a running hook may finish after SIGTERM (30s).
	StopTimeout Duration `yaml:"stop-timeout,omitempty"`
	// UpdateStatusInterval is how often update-status runs (5m).
	UpdateStatusInterval Duration `yaml:"update-status-interval,omitempty"`
	// RetryInitial and RetryMax bound the failed-hook backoff (5s, 5m).
	RetryInitial Duration `yaml:"retry-initial,omitempty"`
	RetryMax     Duration `yaml:"retry-max,omitempty"`
	// MetricsAddr, if set, is where the agent serves its Prometheus
	// metrics at GET /metrics: "unix:/PATH" (a socket in a directory
	// only this user may enter) or "HOST:PORT" on a loopback address
	// (docs/operations.md). Empty: no metrics listener.
	MetricsAddr string `yaml:"metrics-addr,omitempty"`
	// Address is the unit's address (an IP, no port), what network-get
	// and unit-get answer. Empty: the host's primary address, the source
	// address of its default route (else its first non-loopback interface
	// address, else 127.0.0.1), found when the agent starts.
	Address string `yaml:"address,omitempty"`
}

// Defaults for Config fields left empty.
const (
	DefaultGuarantee            = 30 * time.Second
	DefaultHookTimeout          = time.Hour
	DefaultStopTimeout          = 30 * time.Second
	DefaultUpdateStatusInterval = 5 * time.Minute
	DefaultRetryInitial         = 5 * time.Second
	DefaultRetryMax             = 5 * time.Minute
)

// ReadConfig reads agent.yaml from agentDir strictly: unknown fields, a
// missing unit or a future version are errors naming the file, and leave
// it untouched. A version-1 file is migrated first (see ConfigVersion).
// The token comes from TokenFile ("" if there is none).
func ReadConfig(agentDir string) (Config, error) {
	path := filepath.Join(agentDir, "agent.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read agent config: %w", err)
	}
	c, err := parseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read agent config %s: %w", path, err)
	}
	if c.Version < ConfigVersion {
		if err := migrateConfig(agentDir, data, c); err != nil {
			return Config{}, err
		}
	} else if c.Controller.Token, err = readToken(agentDir); err != nil {
		return Config{}, err
	}
	c.Version = ConfigVersion
	c.fill(agentDir)
	return c, nil
}

// parseConfig decodes agent.yaml: the version first, so that a file from a
// newer uniter is refused as such whatever fields it has, then strictly.
func parseConfig(data []byte) (Config, error) {
	var head struct {
		Version int `yaml:"version"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return Config{}, err
	}
	if head.Version > ConfigVersion {
		return Config{}, fmt.Errorf("version %d is newer than this uniter (%s) understands (%d); upgrade uniter",
			head.Version, version.Version, ConfigVersion)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, err
	}
	if c.Version >= 2 && c.Controller.Token != "" {
		return Config{}, fmt.Errorf("controller.token is not allowed in version %d: the token is in the file %q beside agent.yaml", c.Version, TokenFile)
	}
	return c, c.check()
}

// migrateConfig migrates a version-1 agent.yaml (data, parsed as c) of
// agentDir to the current version: old file kept, token moved out.
func migrateConfig(agentDir string, data []byte, c Config) error {
	path := filepath.Join(agentDir, "agent.yaml")
	backup := fmt.Sprintf("%s.v%d.bak", path, c.Version)
	if err := osutil.WriteFileAtomic(backup, data, 0o600); err != nil {
		return fmt.Errorf("cannot keep a copy of agent config %s before migrating it: %w", path, err)
	}
	if err := WriteConfig(agentDir, c); err != nil {
		return fmt.Errorf("cannot migrate agent config %s from version %d: %w", path, c.Version, err)
	}
	return nil
}

// readToken reads agentDir's TokenFile; a missing file is no token.
func readToken(agentDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(agentDir, TokenFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read agent token: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

func (c *Config) check() error {
	switch {
	case c.Version > ConfigVersion:
		return fmt.Errorf("version %d is newer than this uniter understands (%d); upgrade uniter", c.Version, ConfigVersion)
	case c.Version < 1:
		return errors.New("missing version")
	case c.Unit == "":
		return errors.New("missing unit")
	}
	if c.MetricsAddr != "" {
		if err := agentmetrics.CheckAddr(c.MetricsAddr); err != nil {
			return fmt.Errorf("metrics-addr: %w", err)
		}
	}
	if c.Address != "" {
		if _, err := netip.ParseAddr(c.Address); err != nil {
			return fmt.Errorf("address: %q is not an IP address", c.Address)
		}
	}
	_, _, err := SplitUnit(c.Unit)
	return err
}

func (c *Config) fill(agentDir string) {
	if c.CharmDir == "" {
		c.CharmDir = filepath.Join(agentDir, "charm")
	}
	if c.MachineLock == "" {
		c.MachineLock = filepath.Join(Home(), "machine-lock")
	}
	fill := func(d *Duration, def time.Duration) {
		if *d == 0 {
			*d = Duration(def)
		}
	}
	fill(&c.LeadershipGuarantee, DefaultGuarantee)
	fill(&c.HookTimeout, DefaultHookTimeout)
	fill(&c.StopTimeout, DefaultStopTimeout)
	fill(&c.UpdateStatusInterval, DefaultUpdateStatusInterval)
	fill(&c.RetryInitial, DefaultRetryInitial)
	fill(&c.RetryMax, DefaultRetryMax)
}

// WriteConfig writes c to <agentDir>/agent.yaml with mode 0600, and its
// token to <agentDir>/token (0600; removed if c has no token), each
// atomically, the token first.
func WriteConfig(agentDir string, c Config) error {
	c.Version = ConfigVersion
	if err := c.check(); err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	token := c.Controller.Token
	c.Controller.Token = ""
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	if err := os.MkdirAll(agentDir, 0o700); err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	tokenPath := filepath.Join(agentDir, TokenFile)
	if token == "" {
		err = os.Remove(tokenPath)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	} else {
		err = osutil.WriteFileAtomic(tokenPath, []byte(token+"\n"), 0o600)
	}
	if err != nil {
		return fmt.Errorf("cannot write agent token: %w", err)
	}
	if err := osutil.WriteFileAtomic(filepath.Join(agentDir, "agent.yaml"), data, 0o600); err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	return nil
}

// Home returns $UNITER_HOME, or ~/.local/share/uniter.
func Home() string {
	if h := os.Getenv("UNITER_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "uniter")
	}
	return filepath.Join(home, ".local", "share", "uniter")
}

// SplitUnit splits "app/3" into its application and number.
func SplitUnit(unit string) (app string, n int, err error) {
	i := bytes.LastIndexByte([]byte(unit), '/')
	if i <= 0 || i == len(unit)-1 {
		return "", 0, fmt.Errorf("bad unit name %q: want APP/N", unit)
	}
	if _, err := fmt.Sscanf(unit[i+1:], "%d", &n); err != nil || fmt.Sprint(n) != unit[i+1:] || n < 0 {
		return "", 0, fmt.Errorf("bad unit name %q: want APP/N", unit)
	}
	return unit[:i], n, nil
}

// SetControllerAddresses rewrites agentDir's agent.yaml (atomically,
// 0600) with addrs as its controller addresses, keeping everything else.
func SetControllerAddresses(agentDir string, addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("cannot set controller addresses: no addresses")
	}
	cfg, err := ReadConfig(agentDir)
	if err != nil {
		return fmt.Errorf("cannot set controller addresses: %w", err)
	}
	cfg.Controller.Addresses = slices.Clone(addrs)
	if err := WriteConfig(agentDir, cfg); err != nil {
		return fmt.Errorf("cannot set controller addresses: %w", err)
	}
	return nil
}
