package leadership_test

import (
	"context"
	"testing"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/leadership"
)

// holds is a Checker holding one term.
type holds uint64

func (h holds) Check(_ context.Context, term uint64) (bool, error) { return uint64(h) == term, nil }

func TestIsLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		view leadership.HookView
		held uint64
		want bool
	}{
		{"committed leader, lease held", leadership.HookView{CommittedLeader: true, CommittedTerm: 3, Hook: hooks.ConfigChanged}, 3, true},
		{"committed leader, lease lost", leadership.HookView{CommittedLeader: true, CommittedTerm: 3, Hook: hooks.ConfigChanged}, 0, false},
		{"committed leader, other term held", leadership.HookView{CommittedLeader: true, CommittedTerm: 3, Hook: hooks.ConfigChanged}, 4, false},
		{"inside leader-elected for the held term", leadership.HookView{Hook: hooks.LeaderElected, HookTerm: 4}, 4, true},
		{"inside leader-elected for an older term", leadership.HookView{Hook: hooks.LeaderElected, HookTerm: 4}, 5, false},
		{"lease held but nothing committed", leadership.HookView{Hook: hooks.Start, HookTerm: 2}, 2, false},
		{"never inside leader-deposed", leadership.HookView{CommittedLeader: true, CommittedTerm: 3, Hook: hooks.LeaderDeposed, HookTerm: 3}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := leadership.IsLeader(context.Background(), holds(tc.held), tc.view)
			if err != nil || got != tc.want {
				t.Fatalf("IsLeader = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
