package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/uniter-dev/uniter/controller/api"
)

// TestStatusTableShowsPinsNodesAndProtocol: the table carries what an
// operator looks for at 3 a.m.: the leader (marked), a pin with its reason,
// each node's raft state and protocol range, and the version the cluster
// runs.
func TestStatusTableShowsPinsNodesAndProtocol(t *testing.T) {
	leader := "db/1"
	st := api.Status{
		Applications: map[string]api.ApplicationStatus{
			"db": {Leader: &leader, Term: 4, Pinned: []api.PinStatus{{Entity: "alice", Reason: "upgrade"}},
				Units: map[string]api.UnitStatus{
					"db/0": {Agent: api.StatusInfo{Status: "idle"}, Workload: api.StatusInfo{Status: "active"}, OpenPorts: []string{"icmp", "5432/tcp"}},
					"db/1": {Leader: true, Agent: api.StatusInfo{Status: "executing", Message: "running config-changed hook"}, Workload: api.StatusInfo{Status: "active", Message: "ready"}},
				}},
		},
		Controller: api.ControllerStatus{EffectiveVersion: 2, Nodes: []api.Node{
			{ID: "node-1", Address: "127.0.0.1:17070", RaftState: "leader", ProtoMin: 1, ProtoMax: 2},
			{ID: "node-2", Address: "127.0.0.1:17071", RaftState: "follower"},
		}},
	}
	var out strings.Builder
	printStatusTable(&out, st)
	got := out.String()
	for _, want := range []string{
		`(?m)^db\s+db/1\s+4\s+-\s+-\s+alice: upgrade$`,
		`(?m)^UNIT\s+AGENT\s+WORKLOAD\s+VERSION\s+PORTS\s+MESSAGE$`,
		`(?m)^db/0\s+idle\s+active\s+-\s+icmp,5432/tcp\s*$`,
		`(?m)^db/1\*\s+executing \(running config-changed hook\)\s+active\s+-\s+-\s+ready$`,
		`(?m)^NODE\s+ADDRESS\s+RAFT\s+PROTOCOL$`,
		`(?m)^node-1\s+127\.0\.0\.1:17070\s+leader\s+1\.\.2$`,
		`(?m)^node-2\s+127\.0\.0\.1:17071\s+follower\s+-$`,
		`(?m)^controller protocol version 2$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("no line matching %s in:\n%s", want, got)
		}
	}
}
