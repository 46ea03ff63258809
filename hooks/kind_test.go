package hooks_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/uniter-dev/uniter/hooks"
)

func TestKindValidate(t *testing.T) {
	for _, k := range []hooks.Kind{
		hooks.Install, hooks.LeaderElected, hooks.LeaderDeposed, hooks.LeaderSettingsChanged,
		hooks.ConfigChanged, hooks.Start, hooks.UpdateStatus, hooks.Stop, hooks.Remove,
	} {
		if err := k.Validate(); err != nil {
			t.Errorf("%q.Validate() = %v, want nil", k, err)
		}
	}
	for _, k := range []hooks.Kind{"db-relation-joined", "cluster-relation-created", "db_2-relation-broken",
		"relation-relation-changed", "a-b-relation-departed"} {
		if err := k.Validate(); err != nil {
			t.Errorf("%q.Validate() = %v, want nil", k, err)
		}
	}
	for _, k := range []hooks.Kind{"", "x", "Install", "hooks/install", "collect-metrics",
		"-relation-joined", "relation-joined", "Db-relation-joined", "db-relation-joined2", "db--relation-changed", "../x-relation-broken"} {
		err := k.Validate()
		want := `unknown hook kind "` + string(k) + `"`
		if err == nil || err.Error() != want {
			t.Errorf("%q.Validate() = %v, want %s", k, err, want)
		}
	}
}

func TestAllKinds(t *testing.T) {
	want := []hooks.Kind{
		"install", "leader-elected", "leader-deposed", "leader-settings-changed",
		"config-changed", "start", "update-status", "stop", "remove",
	}
	got := hooks.AllKinds()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("AllKinds() (-want +got):\n%s", diff)
	}
	got[0] = "mutated"
	if hooks.AllKinds()[0] != hooks.Install {
		t.Fatal("AllKinds() shares its backing array with callers")
	}
}

func TestParamsValidate(t *testing.T) {
	good := params(hooks.Install, "/charm")
	tests := []struct {
		name    string
		mutate  func(*hooks.Params)
		wantErr string
	}{
		{"valid", func(*hooks.Params) {}, ""},
		{"no tools dir", func(p *hooks.Params) { p.ToolsDir = "" }, ""},
		{"explicit version", func(p *hooks.Params) { p.JujuVersion = "2.9.42" }, ""},
		{"bad kind", func(p *hooks.Params) { p.Kind = "nope" }, `unknown hook kind "nope"`},
		{"no unit", func(p *hooks.Params) { p.Unit = "" }, "unit name is empty"},
		{"relative charm dir", func(p *hooks.Params) { p.CharmDir = "charm" }, `charm directory "charm" is not absolute`},
		{"relative tools dir", func(p *hooks.Params) { p.ToolsDir = "tools" }, `tools directory "tools" is not absolute`},
		{"colon in tools dir", func(p *hooks.Params) { p.ToolsDir = "/a:/b" }, `tools directory "/a:/b" contains ':'`},
		{"version shape", func(p *hooks.Params) { p.JujuVersion = "3.6" }, `juju version "3.6" is not X.Y.Z`},
		{"version suffix", func(p *hooks.Params) { p.JujuVersion = "3.6.8-beta1" }, `juju version "3.6.8-beta1" is not X.Y.Z`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.mutate(&p)
			err := p.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Fatalf("Validate() = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestRelationHook(t *testing.T) {
	for _, tt := range []struct {
		kind     hooks.Kind
		endpoint string
		event    hooks.RelationEvent
		ok       bool
	}{
		{"db-relation-joined", "db", hooks.RelationJoined, true},
		{"my-db-relation-changed", "my-db", hooks.RelationChanged, true},
		{"relation-relation-created", "relation", hooks.RelationCreated, true},
		{"x-relation-departed", "x", hooks.RelationDeparted, true},
		{"x-relation-broken", "x", hooks.RelationBroken, true},
		{"install", "", "", false},
		{"relation-changed", "", "", false},
		{"X-relation-changed", "", "", false},
	} {
		ep, ev, ok := tt.kind.Relation()
		if ep != tt.endpoint || ev != tt.event || ok != tt.ok {
			t.Errorf("%q.Relation() = %q, %q, %v; want %q, %q, %v", tt.kind, ep, ev, ok, tt.endpoint, tt.event, tt.ok)
		}
		if tt.ok && hooks.RelationHook(ep, ev) != tt.kind {
			t.Errorf("RelationHook(%q, %q) = %q", ep, ev, hooks.RelationHook(ep, ev))
		}
	}
}
