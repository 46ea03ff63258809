package lease

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// validateSchema checks that every option has a name, a known type and a
// default that parses as that type.
func validateSchema(schema map[string]Option) error {
	for _, name := range slices.Sorted(maps.Keys(schema)) {
		o := schema[name]
		if name == "" {
			return fmt.Errorf("config option with an empty name")
		}
		if !validOptionType(o.Type) {
			return fmt.Errorf("config option %q has unknown type %q", name, o.Type)
		}
		if o.Default != nil {
			if err := checkOptionValue(name, o, *o.Default); err != nil {
				return fmt.Errorf("default: %w", err)
			}
		}
	}
	return nil
}

func validOptionType(t string) bool {
	switch t {
	case OptionString, OptionInt, OptionFloat, OptionBoolean:
		return true
	}
	return false
}

// checkOptionValue reports whether value parses as o's type. Parsing is
// strconv's, which is deterministic on every host.
func checkOptionValue(name string, o Option, value string) error {
	var err error
	switch o.Type {
	case OptionInt:
		_, err = strconv.ParseInt(value, 10, 64)
	case OptionFloat:
		_, err = strconv.ParseFloat(value, 64)
	case OptionBoolean:
		_, err = strconv.ParseBool(value)
	}
	if err != nil {
		return fmt.Errorf("option %q expects %s, got %q", name, o.Type, value)
	}
	return nil
}

// checkConfig checks changes against a's schema (nil: anything goes), in
// sorted key order so that the error is the same on every replica.
func checkConfig(a *Application, changes map[string]string) error {
	if a.ConfigSchema == nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		v := changes[k]
		o, known := a.ConfigSchema[k]
		_, set := a.Config.Values[k]
		switch {
		case v == "" && (known || set):
			// Deleting resets to the default; a key left over from an
			// older schema may always be deleted.
		case !known:
			return fmt.Errorf("cannot set config: unknown option %q: %w", k, ErrInvalidConfig)
		default:
			if err := checkOptionValue(k, o, v); err != nil {
				return fmt.Errorf("cannot set config: %w: %w", err, ErrInvalidConfig)
			}
		}
	}
	return nil
}
