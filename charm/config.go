package charm

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Option types of config.yaml.
const (
	TypeString  = "string"
	TypeInt     = "int"
	TypeFloat   = "float"
	TypeBoolean = "boolean"
)

// Option is one option of a charm's config.yaml.
type Option struct {
	// Type is TypeString, TypeInt, TypeFloat or TypeBoolean.
	Type string
	// Default is the typed default (string, int64, float64 or bool), or
	// nil when the option has none.
	Default any
	// Description is the option's help text.
	Description string
}

// Config is a charm's configuration schema: the options of its
// config.yaml, by name.
type Config struct {
	Options map[string]Option
}

// rawOption is an option as written in config.yaml.
type rawOption struct {
	Type        string `yaml:"type"`
	Default     any    `yaml:"default"`
	Description string `yaml:"description"`
}

// ReadConfig reads dir/config.yaml. A charm without one has no options.
// An unknown option type or a default that does not fit its type is an
// error naming the file and the option.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Options: map[string]Option{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read charm config: %w", err)
	}
	c, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read charm config %s: %w", path, err)
	}
	return c, nil
}

func parseConfig(data []byte) (*Config, error) {
	var doc struct {
		Options map[string]rawOption `yaml:"options"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	c := &Config{Options: make(map[string]Option, len(doc.Options))}
	for _, name := range slices.Sorted(maps.Keys(doc.Options)) {
		opt, err := checkOption(name, doc.Options[name])
		if err != nil {
			return nil, err
		}
		c.Options[name] = opt
	}
	return c, nil
}

func checkOption(name string, raw rawOption) (Option, error) {
	if name == "" {
		return Option{}, errors.New("option with an empty name")
	}
	switch raw.Type {
	case TypeString, TypeInt, TypeFloat, TypeBoolean:
	case "":
		return Option{}, fmt.Errorf("option %q has no type", name)
	default:
		return Option{}, fmt.Errorf("option %q has unknown type %q (expected string, int, float or boolean)", name, raw.Type)
	}
	def, err := coerceDefault(raw.Type, raw.Default)
	if err != nil {
		return Option{}, fmt.Errorf("option %q: default %v is not a valid %s", name, raw.Default, raw.Type)
	}
	return Option{Type: raw.Type, Default: def, Description: raw.Description}, nil
}

// coerceDefault turns a default as decoded from YAML into the option's Go
// type. Like Juju, numeric and boolean options accept a default written
// as a string; string options accept only strings.
func coerceDefault(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		return parseValue(typ, s)
	}
	switch x := v.(type) {
	case int:
		return coerceInt(typ, int64(x))
	case int64:
		return coerceInt(typ, x)
	case float64:
		if typ == TypeFloat {
			return x, nil
		}
	case bool:
		if typ == TypeBoolean {
			return x, nil
		}
	}
	return nil, errors.New("wrong type")
}

func coerceInt(typ string, x int64) (any, error) {
	switch typ {
	case TypeInt:
		return x, nil
	case TypeFloat:
		return float64(x), nil
	}
	return nil, errors.New("wrong type")
}

// parseValue parses s as a value of an option of type typ.
func parseValue(typ, s string) (any, error) {
	switch typ {
	case TypeInt:
		return strconv.ParseInt(s, 10, 64)
	case TypeFloat:
		return strconv.ParseFloat(s, 64)
	case TypeBoolean:
		return strconv.ParseBool(s)
	default:
		return s, nil
	}
}

// Keys returns the names of all options, sorted.
func (c *Config) Keys() []string {
	return slices.Sorted(maps.Keys(c.Options))
}

// Validate checks values as the controller stores them (strings; "" means
// unset): every key must be an option and every set value must parse as
// its option's type.
func (c *Config) Validate(values map[string]string) error {
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if _, err := c.parse(key, values[key]); err != nil {
			return fmt.Errorf("cannot validate config: %w", err)
		}
	}
	return nil
}

// Typed merges values over the options' defaults and returns the typed
// result (string, int64, float64 or bool). Options with neither a value
// nor a default are absent; Keys lists them.
func (c *Config) Typed(values map[string]string) (map[string]any, error) {
	if err := c.Validate(values); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(c.Options))
	for name, opt := range c.Options {
		if opt.Default != nil {
			out[name] = opt.Default
		}
	}
	for key, s := range values {
		if s == "" {
			continue
		}
		v, _ := c.parse(key, s) // validated above
		out[key] = v
	}
	return out, nil
}

// parse checks one stored value; "" (unset) parses to nil.
func (c *Config) parse(key, s string) (any, error) {
	opt, ok := c.Options[key]
	if !ok {
		return nil, fmt.Errorf("unknown option %q", key)
	}
	if s == "" {
		return nil, nil
	}
	v, err := parseValue(opt.Type, s)
	if err != nil {
		return nil, fmt.Errorf("option %q: value %q is not a valid %s", key, s, opt.Type)
	}
	return v, nil
}
