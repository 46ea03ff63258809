package hooktools

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

var isLeaderTool = toolInfo{
	summary: "print application leadership status",
	doc: `is-leader prints a boolean indicating whether the local unit is guaranteed to
be application leader for at least the leadership guarantee (30 seconds by
default). Within one hook, once it has printed False it always prints False.
It exits 0 either way: test its output, not its exit code.
`,
	new: func() command { return &isLeaderCmd{} },
}

type isLeaderCmd struct{ out output }

func (c *isLeaderCmd) setFlags(f *flagSet)      { c.out.setFlags(f) }
func (c *isLeaderCmd) init(args []string) error { return checkEmpty(args) }

func (c *isLeaderCmd) run(inv *invocation) error {
	ok, err := inv.h.isLeader(inv.ctx)
	if err != nil {
		return fmt.Errorf("leadership status unknown: %w", err)
	}
	inv.obs.IsLeaderAnswered(ok)
	return c.out.write(inv, ok)
}

var leaderGetTool = toolInfo{
	args:    "[<key>]",
	summary: "print application leadership settings",
	doc: `leader-get prints the value of a leadership setting specified by key. If no key
is given, or if the key is "-", all keys and values are printed. A missing key
prints nothing (null with --format=json).
`,
	new: func() command { return &leaderGetCmd{} },
}

type leaderGetCmd struct {
	out output
	key string
}

func (c *leaderGetCmd) setFlags(f *flagSet) { c.out.setFlags(f) }

func (c *leaderGetCmd) init(args []string) error {
	if len(args) == 0 {
		return nil
	}
	switch key := args[0]; {
	case key == "-":
	case strings.Contains(key, "="):
		return fmt.Errorf("invalid key %q", key)
	default:
		c.key = key
	}
	return checkEmpty(args[1:])
}

func (c *leaderGetCmd) run(inv *invocation) error {
	if c.key == "" {
		return c.out.write(inv, maps.Clone(inv.h.settings))
	}
	if v, ok := inv.h.settings[c.key]; ok {
		return c.out.write(inv, v)
	}
	return c.out.write(inv, nil)
}

var leaderSetTool = toolInfo{
	args:    "<key>=<value> [...]",
	summary: "write application leadership settings",
	doc: `leader-set immediately writes the supplied key/value pairs to the controller,
which will then inform non-leader units of the change. "key=" deletes key.
--file reads a YAML map of settings from a file ("-" for standard input);
pairs given as arguments override it. It fails if called by a unit that is
not currently the application leader.
`,
	new: func() command { return &leaderSetCmd{} },
}

type leaderSetCmd struct {
	file  string
	pairs map[string]string
}

func (c *leaderSetCmd) setFlags(f *flagSet) {
	f.stringVar(&c.file, "", "file containing a YAML map of settings (- for standard input)", nil, "file")
}

func (c *leaderSetCmd) init(args []string) (err error) {
	c.pairs, err = parseKeyValues(args)
	return err
}

// errNotLeaderText is Juju's wording, which charms and ops match on.
const errNotLeaderText = "cannot write leadership settings: cannot write settings: not the leader"

func (c *leaderSetCmd) run(inv *invocation) error {
	changes := map[string]string{}
	if c.file != "" {
		fromFile, err := readSettingsFile(inv, c.file)
		if err != nil {
			return err
		}
		maps.Copy(changes, fromFile)
	}
	maps.Copy(changes, c.pairs)
	err := inv.h.backend.SetLeaderSettings(inv.ctx, changes)
	if errors.Is(err, ErrNotLeader) {
		inv.h.notLeader = true
		return errors.New(errNotLeaderText)
	}
	if err != nil {
		return fmt.Errorf("cannot write leadership settings: %w", err)
	}
	for k, v := range changes {
		if v == "" {
			delete(inv.h.settings, k)
		} else {
			inv.h.settings[k] = v
		}
	}
	return nil
}

// parseKeyValues parses key=value arguments as Juju's keyvalues.Parse
// does: key and value are trimmed, the key must not be empty, the value
// may be, and a key may appear once.
func parseKeyValues(args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf(`expected "key=value", got %q`, kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q specified more than once", k)
		}
		out[k] = v
	}
	return out, nil
}

// readSettingsFile reads a YAML map of scalars from path (relative to
// the hook's working directory) or from the request's stdin for "-".
// Scalars keep their text as written; null deletes the key.
func readSettingsFile(inv *invocation, path string) (map[string]string, error) {
	data := inv.stdin
	if path != "-" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(inv.cwd, path)
		}
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("cannot read settings file: %w", err)
		}
	}
	// Parse errors are YAML's own text, as Juju prints them
	// (HOOK-TOOLS.md §6: "yaml: unmarshal errors: …").
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(doc))
	for k, n := range doc {
		switch {
		case strings.TrimSpace(k) == "":
			return nil, errors.New("cannot parse settings file: empty key")
		case n.Kind != yaml.ScalarNode:
			return nil, fmt.Errorf("yaml: unmarshal errors:\n  line %d: cannot unmarshal %s into string", n.Line, n.ShortTag())
		case n.Tag == "!!null":
			out[k] = ""
		default:
			out[k] = n.Value
		}
	}
	return out, nil
}
