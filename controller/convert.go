package controller

import (
	"errors"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// isInvalid reports whether a lease command was refused for its form.
func isInvalid(err error) bool {
	return errors.Is(err, lease.ErrInvalidCommand) || errors.Is(err, lease.ErrInvalidConfig) ||
		errors.Is(err, errInvalidParams)
}

// leaseSchema converts (and checks the form of) a wire config schema; nil
// stays nil (registration without a schema leaves the application's alone).
func leaseSchema(in map[string]api.Option) (map[string]lease.Option, error) {
	if in == nil {
		return nil, nil
	}
	out := make(map[string]lease.Option, len(in))
	for name, o := range in {
		switch o.Type {
		case lease.OptionString, lease.OptionInt, lease.OptionFloat, lease.OptionBoolean:
		default:
			return nil, badRequest("config option %q has unknown type %q", name, o.Type)
		}
		if name == "" {
			return nil, badRequest("config option with an empty name")
		}
		out[name] = lease.Option{Type: o.Type, Default: o.Default, Description: o.Description}
	}
	return out, nil
}

func apiSchema(in map[string]lease.Option) map[string]api.Option {
	out := make(map[string]api.Option, len(in))
	for name, o := range in {
		out[name] = api.Option{Type: o.Type, Default: o.Default, Description: o.Description}
	}
	return out
}

func apiConfig(a lease.Application) api.Config {
	return api.Config{Values: nonNil(a.Config.Values), Version: a.Config.Version, Schema: apiSchema(a.ConfigSchema)}
}

func unitView(u lease.Unit, a lease.Application, rels []lease.RelationSummary) api.UnitView {
	return api.UnitView{
		Life:                  u.Life,
		ResolvedID:            u.ResolvedID,
		ResolvedNoRetry:       u.ResolvedNoRetry,
		ConfigVersion:         a.Config.Version,
		LeaderSettingsVersion: a.LeaderSettings.Version,
		Lease:                 apiLease(a.Lease),
		Relations:             unitRelations(u.Name, u.App, rels),
	}
}

func memberAPIAddr(m lease.Member) string { return m.APIAddr }
