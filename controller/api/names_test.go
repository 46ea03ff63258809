package api_test

import (
	"errors"
	"testing"

	"github.com/uniter-dev/uniter/controller/api"
)

func TestSplitUnit(t *testing.T) {
	for _, tc := range []struct {
		unit string
		app  string
		n    uint64
		ok   bool
	}{
		{"db/0", "db", 0, true},
		{"my-app/12", "my-app", 12, true},
		{"db-0", "", 0, false},
		{"/0", "", 0, false},
		{"db/", "", 0, false},
		{"db/x", "", 0, false},
		{"db/01", "", 0, false},
		{"a/b/0", "", 0, false},
		{"db/-1", "", 0, false},
		{"DB/0", "", 0, false},
		{"db-1/0", "", 0, false},
		{"9db/0", "", 0, false},
	} {
		app, n, err := api.SplitUnit(tc.unit)
		if tc.ok {
			if err != nil || app != tc.app || n != tc.n {
				t.Errorf("SplitUnit(%q) = %q, %d, %v; want %q, %d", tc.unit, app, n, err, tc.app, tc.n)
			}
			continue
		}
		if !errors.Is(err, api.ErrInvalidCommand) {
			t.Errorf("SplitUnit(%q) = %q, %d, %v; want an error matching ErrInvalidCommand", tc.unit, app, n, err)
		}
	}
}

func TestEveryRefusalCodeHasItsOwnSentinel(t *testing.T) {
	seen := map[error]string{}
	for _, code := range api.RefusalCodes() {
		s := api.Sentinel(code)
		if s == nil {
			t.Errorf("code %q has no sentinel", code)
			continue
		}
		if other, dup := seen[s]; dup {
			t.Errorf("codes %q and %q share a sentinel", code, other)
		}
		seen[s] = code
		err := &api.CodeError{Code: code, Message: "controller said no"}
		if !errors.Is(err, s) || err.Error() != "controller said no" {
			t.Errorf("CodeError{%q} does not match its sentinel or lost its message", code)
		}
		for other, oc := range seen {
			if oc != code && errors.Is(err, other) {
				t.Errorf("CodeError{%q} matches the sentinel of %q", code, oc)
			}
		}
	}
	if api.Sentinel("zzz") != nil || errors.Is(&api.CodeError{Code: "zzz"}, api.ErrPinned) {
		t.Error("an unknown code must match no sentinel")
	}
}
