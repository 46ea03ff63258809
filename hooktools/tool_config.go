package hooktools

import (
	"fmt"
	"maps"
)

var configGetTool = toolInfo{
	args:    "[<key>]",
	summary: "print application configuration",
	doc: `When no <key> is supplied, all keys with values or defaults are printed. If
--all is set, all known keys are printed; those without defaults or values are
reported as null. <key> and --all are mutually exclusive. Values are those of
the moment the hook started.
`,
	new: func() command { return &configGetCmd{} },
}

type configGetCmd struct {
	out output
	all bool
	key string
}

func (c *configGetCmd) setFlags(f *flagSet) {
	c.out.setFlags(f)
	f.boolVar(&c.all, "print all keys", "a", "all")
}

func (c *configGetCmd) init(args []string) error {
	if len(args) == 0 {
		return nil
	}
	c.key = args[0]
	if c.key != "" && c.all {
		return fmt.Errorf("cannot use argument --all together with key %q", c.key)
	}
	return checkEmpty(args[1:])
}

func (c *configGetCmd) run(inv *invocation) error {
	if c.key != "" {
		return c.out.write(inv, inv.h.config[c.key]) // nil when unset
	}
	settings := maps.Clone(inv.h.config)
	if !c.all {
		maps.DeleteFunc(settings, func(_ string, v any) bool { return v == nil })
		return c.out.write(inv, settings)
	}
	for _, k := range inv.h.configKeys {
		if _, ok := settings[k]; !ok {
			settings[k] = nil
		}
	}
	return c.out.write(inv, settings)
}
