package client

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/uniter-dev/uniter/controller/api"
)

// relationPath is /v1/relations/ID + rest for a well-formed relation id
// ("N" or "endpoint:N").
func relationPath(relation, rest string) (string, error) {
	if _, _, err := api.ParseRelationID(relation); err != nil {
		return "", err
	}
	return "/v1/relations/" + url.PathEscape(relation) + rest, nil
}

// AddRelation relates two applications' endpoints (admin), each "app" or
// "app:endpoint"; a bare application lets the controller pick the one
// pair of endpoints that relates (a requires to a provides endpoint of
// the same interface). It returns the new relation. Refusals: an unknown
// application (api.ErrUnknownApplication); an unknown endpoint,
// mismatched roles or interfaces, a peers endpoint, no or several
// candidate pairs (api.ErrInvalidCommand, with the controller's reason);
// an existing relation (api.ErrRelationExists); a cluster below protocol
// 4 (api.ErrNeedsProtocol).
func (c *Client) AddRelation(ctx context.Context, a, b string) (api.Relation, error) {
	for _, e := range []string{a, b} {
		if _, _, err := api.ParseEndpointRef(e); err != nil {
			return api.Relation{}, err
		}
	}
	var out api.RelationResponse
	_, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/relations",
		body: api.AddRelationRequest{Endpoints: []string{a, b}}, out: &out})
	return out.Relation, err
}

// RemoveRelation removes a relation (admin): it is dying until the last
// unit in its scope has left, then gone. A peer relation is refused
// (api.ErrInvalidCommand), an unknown one matches api.ErrUnknownRelation.
func (c *Client) RemoveRelation(ctx context.Context, relation string) error {
	path, err := relationPath(relation, "")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodDelete, path, nil)
}

// Relations lists every relation, by id, without data (admin).
func (c *Client) Relations(ctx context.Context) ([]api.Relation, error) {
	var out api.RelationsResponse
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/relations", out: &out})
	return out.Relations, err
}

// ApplicationRelations lists app's relations (its peer relations
// included), by id, without data.
func (c *Client) ApplicationRelations(ctx context.Context, app string) ([]api.Relation, error) {
	var out api.RelationsResponse
	_, err := c.do(ctx, call{method: http.MethodGet, path: appPath(app, "/relations"), out: &out})
	return out.Relations, err
}

// Relation returns a relation with the databags the caller may read (see
// controller/doc.go). Unknown: api.ErrUnknownRelation.
func (c *Client) Relation(ctx context.Context, relation string) (api.Relation, error) {
	r, _, err := c.WatchRelation(ctx, relation, 0, 0)
	return r, err
}

// WatchRelation is Relation as a blocking query: it answers once the
// relation's modify index exceeds index, or after wait (index 0 answers
// at once), with that index. A relation removed meanwhile matches
// api.ErrUnknownRelation.
func (c *Client) WatchRelation(ctx context.Context, relation string, index uint64, wait time.Duration) (api.Relation, uint64, error) {
	path, err := relationPath(relation, "")
	if err != nil {
		return api.Relation{}, 0, err
	}
	q, timeout := c.blockingQuery(index, wait)
	var out api.RelationResponse
	h, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, out: &out, timeout: timeout})
	if err != nil {
		return api.Relation{}, 0, err
	}
	return out.Relation, headerIndex(h), nil
}

// EnterScope puts unit in the relation's scope, its unit databag seeded
// with data, and returns the databag's version. Again: a no-op (the
// databag is kept). A dying relation or unit: api.ErrCannotEnterScope.
func (c *Client) EnterScope(ctx context.Context, relation, unit string, data map[string]string) (uint64, error) {
	if err := checkDatabagValues("enter scope of relation "+relation, data); err != nil {
		return 0, err
	}
	return c.versionCall(ctx, http.MethodPost, relation, "/enter-scope", api.ScopeRequest{Unit: unit, Data: data})
}

// LeaveScope takes unit out of the relation's scope (a no-op if it is
// not in it); the last unit to leave a dying relation removes it.
func (c *Client) LeaveScope(ctx context.Context, relation, unit string) error {
	path, err := relationPath(relation, "/leave-scope")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, api.ScopeRequest{Unit: unit})
}

// SetUnitRelationData changes unit's own databag in the relation ("" deletes
// a key) and returns its version. The unit must be in scope
// (api.ErrNotInScope); a value over a limit matches api.ErrLimitExceeded.
func (c *Client) SetUnitRelationData(ctx context.Context, relation, unit string, changes map[string]string) (uint64, error) {
	if err := checkDatabagValues("set relation data of relation "+relation, changes); err != nil {
		return 0, err
	}
	return c.versionCall(ctx, http.MethodPatch, relation, "/unit-data", api.RelationDataChanges{Unit: unit, Changes: nonNilChanges(changes)})
}

// SetAppRelationData changes the databag of unit's application in the
// relation if unit holds the application's lease in term, else the error
// matches api.ErrNotLeader (a deposed leader's write is refused even if
// its agent has not noticed). It returns the databag's version.
func (c *Client) SetAppRelationData(ctx context.Context, relation, unit string, term uint64, changes map[string]string) (uint64, error) {
	if err := checkDatabagValues("set relation data of relation "+relation, changes); err != nil {
		return 0, err
	}
	return c.versionCall(ctx, http.MethodPatch, relation, "/app-data",
		api.RelationDataChanges{Unit: unit, Term: term, Changes: nonNilChanges(changes)})
}

// CommitRelationData applies every relation write of one of unit's hooks
// at once, or, if any is refused, none (the error says which relation and
// why, and matches the refusal's sentinel: api.ErrNotInScope,
// api.ErrNotLeader, api.ErrLimitExceeded, api.ErrUnknownRelation, ...).
// term fences the application databag writes.
func (c *Client) CommitRelationData(ctx context.Context, unit string, term uint64, commits []api.RelationCommit) error {
	path, err := unitPath(unit, "/relation-data")
	if err != nil {
		return err
	}
	for _, rc := range commits {
		if _, _, err := api.ParseRelationID(rc.Relation); err != nil {
			return err
		}
		what := "commit relation data of relation " + rc.Relation
		if err := checkDatabagValues(what, rc.Unit); err != nil {
			return err
		}
		if err := checkDatabagValues(what, rc.App); err != nil {
			return err
		}
	}
	if commits == nil {
		commits = []api.RelationCommit{}
	}
	return c.write(ctx, http.MethodPost, path, api.CommitRequest{Term: term, Relations: commits})
}

func (c *Client) versionCall(ctx context.Context, method, relation, rest string, body any) (uint64, error) {
	path, err := relationPath(relation, rest)
	if err != nil {
		return 0, err
	}
	var out api.VersionResult
	if _, err := c.do(ctx, call{method: method, path: path, body: body, out: &out}); err != nil {
		return 0, err
	}
	return out.Version, nil
}

// checkDatabagValues refuses, before sending, a key or value the
// controller would refuse for its size: the same text and sentinel
// (api.ErrLimitExceeded) as the controller's answer, and no request body
// over the API's limit for a value that could never be stored.
func checkDatabagValues(what string, changes map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		v := changes[k]
		var msg string
		switch {
		case len(k) > api.MaxDatabagKeyBytes:
			msg = fmt.Sprintf("cannot %s: key %.32q... is %d bytes; the limit is %d", what, k, len(k), api.MaxDatabagKeyBytes)
		case len(v) > api.MaxDatabagValueBytes:
			msg = fmt.Sprintf("cannot %s: value of %q is %d bytes; the limit is %d", what, k, len(v), api.MaxDatabagValueBytes)
		default:
			continue
		}
		return &callError{status: http.StatusRequestEntityTooLarge,
			body: api.Error{Error: msg, Code: api.CodeLimitExceeded},
			err:  &api.CodeError{Code: api.CodeLimitExceeded, Message: msg}}
	}
	return nil
}

func nonNilChanges(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
