package hooks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooks"
)

// agentEnv is what an agent's environment might hold: the variables a hook
// must inherit and many it must not.
var agentEnv = map[string]string{
	"LANG": "C.UTF-8", "LC_ALL": "en_GB.UTF-8", "TZ": "Europe/London",
	"http_proxy": "http://p:3128", "https_proxy": "http://ps:3128", "no_proxy": "localhost",
	"HTTP_PROXY": "http://P:3128", "HTTPS_PROXY": "http://PS:3128", "NO_PROXY": "127.0.0.1",
	"PATH": "/agent/bin", "HOME": "/root", "OPERATOR_DISPATCH": "1", "JUJU_CONTEXT_ID": "agent-ctx",
	"UNITER_ADMIN_TOKEN": "secret", "LC_CTYPE": "C", "ftp_proxy": "http://f",
}

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnviron(t *testing.T) {
	base := []string{
		"CHARM_DIR=/charm",
		"JUJU_AGENT_SOCKET_ADDRESS=/var/lib/uniter/app-0/run/agent.sock",
		"JUJU_AGENT_SOCKET_NETWORK=unix",
		"JUJU_CHARM_DIR=/charm",
		"JUJU_CONTEXT_ID=app/0-install-0123456789abcdef",
		"JUJU_DISPATCH_PATH=hooks/install",
		"JUJU_HOOK_NAME=install",
		"JUJU_MODEL_NAME=test",
		"JUJU_MODEL_UUID=6f1c1a8e-1111-4222-8333-944445555666",
		"JUJU_UNIT_NAME=app/0",
		"JUJU_VERSION=3.6.8",
		"PATH=/var/lib/uniter/app-0/tools:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"UNITER_LEADERSHIP_TERM=4",
	}
	tests := []struct {
		name   string
		mutate func(*hooks.Params)
		lookup func(string) (string, bool)
		want   []string // in addition to, or replacing entries of, base
	}{{
		name: "fresh, nothing passed",
	}, {
		name:   "nil lookup",
		lookup: nil,
	}, {
		name:   "passes locale, timezone and proxies only",
		lookup: lookupIn(agentEnv),
		want: []string{
			"HTTPS_PROXY=http://PS:3128", "HTTP_PROXY=http://P:3128", "LANG=C.UTF-8",
			"LC_ALL=en_GB.UTF-8", "NO_PROXY=127.0.0.1", "TZ=Europe/London",
			"http_proxy=http://p:3128", "https_proxy=http://ps:3128", "no_proxy=localhost",
		},
	}, {
		name:   "dispatch path and hook name follow the kind",
		mutate: func(p *hooks.Params) { p.Kind = hooks.LeaderSettingsChanged },
		want:   []string{"JUJU_DISPATCH_PATH=hooks/leader-settings-changed", "JUJU_HOOK_NAME=leader-settings-changed"},
	}, {
		name:   "explicit version and big term",
		mutate: func(p *hooks.Params) { p.JujuVersion = "2.9.42"; p.LeadershipTerm = 18446744073709551615 },
		want:   []string{"JUJU_VERSION=2.9.42", "UNITER_LEADERSHIP_TERM=18446744073709551615"},
	}, {
		name: "relation hook: relation, id, remote unit and app",
		mutate: func(p *hooks.Params) {
			p.Kind = "db-relation-changed"
			p.Relation = &hooks.RelationParams{Endpoint: "db", ID: "db:3", RemoteUnit: "pg/1", RemoteApp: "pg"}
		},
		want: []string{"JUJU_DISPATCH_PATH=hooks/db-relation-changed", "JUJU_HOOK_NAME=db-relation-changed",
			"JUJU_RELATION=db", "JUJU_RELATION_ID=db:3", "JUJU_REMOTE_UNIT=pg/1", "JUJU_REMOTE_APP=pg"},
	}, {
		name: "relation hook without a remote unit: JUJU_REMOTE_UNIT set, empty",
		mutate: func(p *hooks.Params) {
			p.Kind = "db-relation-created"
			p.Relation = &hooks.RelationParams{Endpoint: "db", ID: "db:3", RemoteApp: "pg"}
		},
		want: []string{"JUJU_DISPATCH_PATH=hooks/db-relation-created", "JUJU_HOOK_NAME=db-relation-created",
			"JUJU_RELATION=db", "JUJU_RELATION_ID=db:3", "JUJU_REMOTE_UNIT=", "JUJU_REMOTE_APP=pg"},
	}, {
		name: "departed: the departing unit",
		mutate: func(p *hooks.Params) {
			p.Kind = "cluster-relation-departed"
			p.Relation = &hooks.RelationParams{Endpoint: "cluster", ID: "cluster:0", RemoteUnit: "app/1", RemoteApp: "app",
				DepartingUnit: "app/0"}
		},
		want: []string{"JUJU_DISPATCH_PATH=hooks/cluster-relation-departed", "JUJU_HOOK_NAME=cluster-relation-departed",
			"JUJU_RELATION=cluster", "JUJU_RELATION_ID=cluster:0", "JUJU_REMOTE_UNIT=app/1", "JUJU_REMOTE_APP=app",
			"JUJU_DEPARTING_UNIT=app/0"},
	}, {
		name:   "no tools dir: system path only",
		mutate: func(p *hooks.Params) { p.ToolsDir = "" },
		want:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params(hooks.Install, "/charm")
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			got := hooks.Environ(p, tt.lookup)
			if !slices.IsSorted(got) {
				t.Errorf("Environ() is not sorted: %q", got)
			}
			if diff := cmp.Diff(overlay(base, tt.want), got); diff != "" {
				t.Errorf("Environ() (-want +got):\n%s", diff)
			}
		})
	}
}

// overlay returns base with the entries of extra added, an entry of extra
// replacing the base entry with the same name; sorted.
func overlay(base, extra []string) []string {
	m := map[string]string{}
	for _, kv := range append(slices.Clone(base), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		m[k] = kv
	}
	var out []string
	for _, kv := range m {
		out = append(out, kv)
	}
	slices.Sort(out)
	return out
}
