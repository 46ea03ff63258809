package hooktools

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errHelp is returned by parse for -h and --help.
var errHelp = errors.New("help requested")

// flagDef is one flag, known by one or more names ("o", "output").
type flagDef struct {
	names    []string
	help     string
	boolP    *bool
	strP     *string
	def      string             // default shown in usage (string flags)
	validate func(string) error // optional, string flags
}

func (d *flagDef) isBool() bool { return d.boolP != nil }

// flagSet parses hook-tool arguments the way Juju's gnuflag does, with
// flags allowed anywhere: flags may follow positional arguments, `--` ends
// flags, a lone `-` is positional, long flags take `--name=value` or
// `--name value`, one-letter flags `-x value`, `-x=value` or `-xvalue`,
// and boolean flags take `--name` or `--name=VALUE` with anything
// strconv.ParseBool accepts.
type flagSet struct {
	defs   []*flagDef
	byName map[string]*flagDef
}

func newFlagSet() *flagSet { return &flagSet{byName: map[string]*flagDef{}} }

func (f *flagSet) add(d *flagDef) {
	f.defs = append(f.defs, d)
	for _, n := range d.names {
		f.byName[n] = d
	}
}

// boolVar defines a boolean flag.
func (f *flagSet) boolVar(p *bool, help string, names ...string) {
	f.add(&flagDef{names: names, help: help, boolP: p})
}

// stringVar defines a string flag with default def.
func (f *flagSet) stringVar(p *string, def, help string, validate func(string) error, names ...string) {
	*p = def
	f.add(&flagDef{names: names, help: help, strP: p, def: def, validate: validate})
}

// dashed returns a flag name as written on the command line.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// parse sets the flags in args and returns the positional arguments.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(pos, args[i+1:]...), nil
		case a == "-h" || a == "--help":
			return nil, errHelp
		case strings.HasPrefix(a, "--"):
			n, err := f.parseLong(a[2:], args[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
		case strings.HasPrefix(a, "-") && a != "-":
			n, err := f.parseShort(a[1:], args[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
		default:
			pos = append(pos, a)
		}
	}
	return pos, nil
}

// parseLong handles "--name[=value]" (given without the dashes) and
// returns how many of the following arguments it consumed.
func (f *flagSet) parseLong(s string, rest []string) (int, error) {
	name, value, hasValue := strings.Cut(s, "=")
	d := f.byName[name]
	if d == nil || len(name) == 1 {
		return 0, fmt.Errorf("option provided but not defined: --%s", name)
	}
	return f.set(d, "--"+name, value, hasValue, rest)
}

// parseShort handles "-x", "-x=value" and "-xvalue" (given without the
// dash).
func (f *flagSet) parseShort(s string, rest []string) (int, error) {
	name := s[:1]
	d := f.byName[name]
	if d == nil {
		return 0, fmt.Errorf("option provided but not defined: -%s", name)
	}
	value, hasValue := s[1:], len(s) > 1
	if hasValue && value[0] == '=' {
		value = value[1:]
	} else if hasValue && d.isBool() {
		return 0, fmt.Errorf("option provided but not defined: -%s", s)
	}
	return f.set(d, "-"+name, value, hasValue, rest)
}

func (f *flagSet) set(d *flagDef, as, value string, hasValue bool, rest []string) (int, error) {
	if d.isBool() {
		if !hasValue {
			*d.boolP = true
			return 0, nil
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return 0, fmt.Errorf("invalid value %q for option %s: %v", value, as, err)
		}
		*d.boolP = b
		return 0, nil
	}
	used := 0
	if !hasValue {
		if len(rest) == 0 {
			return 0, fmt.Errorf("option needs an argument: %s", as)
		}
		value, used = rest[0], 1
	}
	if d.validate != nil {
		if err := d.validate(value); err != nil {
			return 0, fmt.Errorf("invalid value %q for option %s: %v", value, as, err)
		}
	}
	*d.strP = value
	return used, nil
}

// usage renders the "Options:" block of a tool's usage text.
func (f *flagSet) usage() string {
	var b strings.Builder
	for _, d := range f.defs {
		names := make([]string, len(d.names))
		for i, n := range d.names {
			names[i] = dashed(n)
		}
		b.WriteString(strings.Join(names, ", "))
		switch {
		case d.isBool():
		case d.def == "":
			b.WriteString(` (= "")`)
		default:
			fmt.Fprintf(&b, " (= %s)", d.def)
		}
		fmt.Fprintf(&b, "\n    %s\n", d.help)
	}
	return b.String()
}
