package controller

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/lease"
)

// TestEveryErrorSurvivesTransport: each server-side sentinel has its own
// code, and the error the client rebuilds from that code and the message
// matches the api sentinel of the same name and keeps the message.
func TestEveryErrorSurvivesTransport(t *testing.T) {
	codes := map[string]bool{}
	for _, c := range errorCodes {
		wrapped := fmt.Errorf("cannot do it: %w", c.err)
		code := errorCode(wrapped)
		if code != c.code || codes[code] {
			t.Errorf("%v: code %q (want %q) missing or reused", c.err, code, c.code)
		}
		codes[code] = true
		sentinel := api.Sentinel(code)
		if sentinel == nil {
			t.Errorf("%v: code %q has no api sentinel", c.err, code)
			continue
		}
		got := &api.CodeError{Code: code, Message: wrapped.Error()}
		if !errors.Is(got, sentinel) || got.Error() != wrapped.Error() {
			t.Errorf("%v did not survive transport: %v", c.err, got)
		}
	}
	for _, code := range api.RefusalCodes() {
		if !codes[code] {
			t.Errorf("api code %q is never sent: no server error maps to it", code)
		}
	}
	if errorCode(errors.New("other")) != "" {
		t.Error("an unknown error must have no code")
	}
}

// TestRelationRefusalStatuses: the state machine's relation refusals get
// the HTTP status of their kind.
func TestRelationRefusalStatuses(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{lease.ErrUnknownRelation, http.StatusNotFound, api.CodeUnknownRelation},
		{lease.ErrRelationExists, http.StatusConflict, api.CodeRelationExists},
		{lease.ErrCannotEnterScope, http.StatusConflict, api.CodeCannotEnterScope},
		{lease.ErrNotInScope, http.StatusConflict, api.CodeNotInScope},
		{lease.ErrTooLarge, http.StatusRequestEntityTooLarge, api.CodeLimitExceeded},
	} {
		wrapped := fmt.Errorf("cannot set relation data of relation 3: %w", tc.err)
		status, body := errorResponse(wrapped)
		if status != tc.status || body.Code != tc.code || body.Error != wrapped.Error() {
			t.Errorf("%v: %d %+v, want %d %s", tc.err, status, body, tc.status, tc.code)
		}
	}
}
