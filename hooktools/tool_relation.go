package hooktools

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

var relationIDsTool = toolInfo{
	args:    "[<name>]",
	summary: "list all relation ids for a relation name",
	doc: `relation-ids lists the ids of the relations of endpoint <name> (by default the
endpoint of the hook's relation), as "<name>:<id>", one per line. An unknown
name lists nothing. Relations that are going away are left out.
`,
	new: func() command { return &relationIDsCmd{} },
}

type relationIDsCmd struct {
	out  output
	name string
}

func (c *relationIDsCmd) setFlags(f *flagSet) { c.out.setFlags(f) }

func (c *relationIDsCmd) init(args []string) error {
	if len(args) > 0 {
		c.name = args[0]
		return checkEmpty(args[1:])
	}
	return nil
}

func (c *relationIDsCmd) run(inv *invocation) error {
	name := c.name
	if name == "" {
		if inv.h.rel.hookRel == nil {
			return usagef("no endpoint name specified")
		}
		name = inv.h.rel.relations[inv.h.rel.hookRel.ID].Endpoint
	}
	ids := []string{}
	for _, r := range inv.h.rel.relations {
		if r.Endpoint == name && !r.Dying {
			ids = append(ids, relationRef(r))
		}
	}
	slices.Sort(ids)
	return c.out.write(inv, ids)
}

var relationListTool = toolInfo{
	summary: "list relation units",
	doc: `relation-list lists the remote units in scope of the relation given by -r (by
default the hook's), sorted. With --app it prints the remote application's name.
`,
	new: func() command { return &relationListCmd{} },
}

type relationListCmd struct {
	out output
	rel relationFlag
	app bool
}

func (c *relationListCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	c.rel.setFlags(f)
	f.boolVar(&c.app, "List remote application instead of participating units", "app")
}

func (c *relationListCmd) init(args []string) error { return checkEmpty(args) }

func (c *relationListCmd) run(inv *invocation) error {
	r, err := c.rel.resolve(inv.h)
	if err != nil {
		return err
	}
	if c.app {
		return c.out.write(inv, r.RemoteApp)
	}
	members := slices.Clone(r.Members)
	if members == nil {
		members = []string{} // json [] as Juju, never null: ops iterates it
	}
	return c.out.write(inv, members)
}

var relationGetTool = toolInfo{
	args:    "<key> <unit id>",
	summary: "get relation settings",
	doc: `relation-get prints the value of a key in the relation settings of a unit (or,
with --app, of an application), or all settings for "-" or no key. The unit
defaults to the hook's remote unit, else the remote application (--app is then
implied). A missing key prints nothing (null with --format=json). This unit's
own settings include what the running hook has written with relation-set.
`,
	new: func() command { return &relationGetCmd{} },
}

type relationGetCmd struct {
	out   output
	rel   relationFlag
	app   bool
	key   string
	owner string
}

func (c *relationGetCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	c.rel.setFlags(f)
	f.boolVar(&c.app, "Get the relation data for the overall application, not just a unit", "app")
}

func (c *relationGetCmd) init(args []string) error {
	if len(args) > 0 {
		if args[0] != "-" {
			c.key = args[0]
		}
		args = args[1:]
	}
	if len(args) > 0 {
		c.owner = args[0]
		args = args[1:]
	}
	return checkEmpty(args)
}

func (c *relationGetCmd) run(inv *invocation) error {
	r, err := c.rel.resolve(inv.h)
	if err != nil {
		return err
	}
	owner, app := c.owner, c.app
	switch {
	case owner == "":
		hr := inv.h.rel.hookRel
		switch {
		case hr != nil && hr.ID == r.ID && hr.RemoteUnit != "" && !app:
			owner = hr.RemoteUnit
		case hr != nil && hr.ID == r.ID && hr.RemoteApp != "":
			owner, app = hr.RemoteApp, true
		default:
			return usagef("no unit or application specified")
		}
	case app && !appNameRE.MatchString(owner):
		return usagef("invalid application name %q", owner)
	case !app && appNameRE.MatchString(owner):
		return usagef("expected unit name, got application name %q", owner)
	case !app && !unitNameRE.MatchString(owner):
		return usagef("invalid unit name %q", owner)
	}
	bag, err := inv.h.readBag(inv.ctx, r, owner, app)
	if err != nil {
		return err
	}
	if c.key == "" {
		return c.out.write(inv, bag)
	}
	if v, ok := bag[c.key]; ok {
		return c.out.write(inv, v)
	}
	return c.out.write(inv, nil)
}

var relationSetTool = toolInfo{
	args:    "key=value [key=value ...]",
	summary: "set relation settings",
	doc: `relation-set writes settings of this unit (or, with --app, of its application,
which only the leader may) in the relation given by -r (by default the hook's).
"key=" deletes key. --file reads a YAML map of settings from a file ("-" for
standard input); key=value arguments override it. The writes are sent to the
controller only if the hook succeeds; a failed hook's writes are discarded.
`,
	new: func() command { return &relationSetCmd{} },
}

type relationSetCmd struct {
	rel    relationFlag
	app    bool
	file   string
	format string
	pairs  map[string]string
}

func (c *relationSetCmd) setFlags(f *flagSet) {
	c.rel.setFlags(f)
	f.boolVar(&c.app, "pick whether you are setting \"application\" settings or \"unit\" settings", "app")
	f.stringVar(&c.file, "", "file containing key-value pairs", nil, "file")
	f.stringVar(&c.format, "", "deprecated format flag", nil, "format")
}

func (c *relationSetCmd) init(args []string) (err error) {
	c.pairs, err = parseKeyValues(args)
	return err
}

// errRelationWriteText is Juju's wording for a non-leader's --app write.
const errRelationWriteText = "cannot write relation settings"

func (c *relationSetCmd) run(inv *invocation) error {
	r, err := c.rel.resolve(inv.h)
	if err != nil {
		return err
	}
	if c.format != "" {
		inv.stderr.WriteString("--format flag deprecated for command \"relation-set\"\n")
	}
	changes := map[string]string{}
	if c.file != "" {
		fromFile, err := readSettingsFile(inv, c.file)
		if err != nil {
			return err
		}
		for k, v := range fromFile {
			changes[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	maps.Copy(changes, c.pairs)
	if c.app {
		if ok, _ := inv.h.isLeader(inv.ctx); !ok {
			return fmt.Errorf("%s", errRelationWriteText)
		}
	}
	inv.h.bufferWrite(r, c.app, changes)
	return nil
}

var goalStateTool = toolInfo{
	summary: "print the status of the charm's peers and related units",
	doc: `goal-state prints the units of this application and, per endpoint of a
non-peer relation, the related application and its units, each with a status
and the time it took it.
`,
	new: func() command { return &goalStateCmd{} },
}

type goalStateCmd struct{ out output }

func (c *goalStateCmd) setFlags(f *flagSet) { c.out.setFlagsDefault(f, formatYAML) }

func (c *goalStateCmd) init(args []string) error { return checkEmpty(args) }

// goalSince is how goal-state prints times.
const goalSince = "2006-01-02 15:04:05Z"

func (c *goalStateCmd) run(inv *invocation) error {
	entry := func(g GoalStatus) map[string]any {
		return map[string]any{"status": g.Status, "since": g.Since.UTC().Format(goalSince)}
	}
	goal, err := inv.h.goalState(inv.ctx)
	if err != nil {
		return err
	}
	units := map[string]any{}
	for name, g := range goal.Units {
		units[name] = entry(g)
	}
	rels := map[string]any{}
	for ep, members := range goal.Relations {
		m := map[string]any{}
		for name, g := range members {
			m[name] = entry(g)
		}
		rels[ep] = m
	}
	return c.out.write(inv, map[string]any{"units": units, "relations": rels})
}
