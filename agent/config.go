package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/uniter-dev/uniter/operation"
)

// ConfigVersion is the agent.yaml schema this binary writes.
const ConfigVersion = 1

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
	// Token is the unit's secret; agent.yaml is therefore mode 0600.
	Token string `yaml:"token"`
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
// missing unit or a future version are errors naming the file.
func ReadConfig(agentDir string) (Config, error) {
	path := filepath.Join(agentDir, "agent.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read agent config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("cannot read agent config %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return Config{}, fmt.Errorf("cannot read agent config %s: %w", path, err)
	}
	c.fill(agentDir)
	return c, nil
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

// WriteConfig writes c to <agentDir>/agent.yaml with mode 0600, atomically.
func WriteConfig(agentDir string, c Config) error {
	c.Version = ConfigVersion
	if err := c.check(); err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	if err := os.MkdirAll(agentDir, 0o700); err != nil {
		return fmt.Errorf("cannot write agent config: %w", err)
	}
	if err := operation.WriteFileAtomic(filepath.Join(agentDir, "agent.yaml"), data, 0o600); err != nil {
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
