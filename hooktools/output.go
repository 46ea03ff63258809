package hooktools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Output formats of --format.
const (
	formatSmart = "smart"
	formatYAML  = "yaml"
	formatJSON  = "json"
)

func validateFormat(s string) error {
	switch s {
	case formatSmart, formatYAML, formatJSON:
		return nil
	}
	return fmt.Errorf("unknown format %q", s)
}

// output holds the --format and -o/--output flags of the tools that
// print a value, and prints it as Juju's cmd.Output does: the formatted
// value and a newline, or nothing at all when it formats to nothing.
type output struct {
	format string
	path   string
}

func (o *output) setFlags(f *flagSet) { o.setFlagsDefault(f, formatSmart) }

// setFlagsDefault is setFlags for a tool whose default format is def.
func (o *output) setFlagsDefault(f *flagSet, def string) {
	f.stringVar(&o.format, def, "Specify output format (json|smart|yaml)", validateFormat, "format")
	f.stringVar(&o.path, "", "Specify an output file", nil, "o", "output")
}

// write prints v to the hook's stdout, or to the -o file (relative to the
// hook's working directory).
func (o *output) write(inv *invocation, v any) error {
	b, err := formatValue(o.format, v)
	if err != nil {
		return err
	}
	if len(b) > 0 {
		b = append(b, '\n')
	}
	if o.path == "" {
		inv.stdout.Write(b)
		return nil
	}
	path := o.path
	if !filepath.IsAbs(path) {
		if inv.cwd == "" {
			return fmt.Errorf("cannot write output: relative path %q and no working directory", path)
		}
		path = filepath.Join(inv.cwd, path)
	}
	if err := os.WriteFile(path, b, 0o666); err != nil {
		return fmt.Errorf("cannot write output: %w", err)
	}
	return nil
}

// formatValue renders v in format; nil renders to nothing except in json
// (null).
func formatValue(format string, v any) ([]byte, error) {
	switch format {
	case formatJSON:
		return json.Marshal(v)
	case formatYAML:
		return formatYAMLValue(v)
	default:
		return formatSmartValue(v)
	}
}

// formatSmartValue follows Juju's smart format: nothing for nil, a string
// as itself, a bool as True/False, numbers as %v, anything else as YAML.
func formatSmartValue(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []string: // one item per line; nothing when empty
		return []byte(strings.Join(x, "\n")), nil
	case bool:
		if x {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return fmt.Appendf(nil, "%v", v), nil
	}
	return formatYAMLValue(v)
}

// formatYAMLValue renders v as YAML with two-space indents (as Juju's
// yaml.v2 did), without trailing newlines; nil renders to nothing.
func formatYAMLValue(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot format output: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot format output: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
