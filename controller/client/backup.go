package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/uniter-dev/uniter/controller/api"
)

// Backup returns a consistent copy of the controller's replicated state, in
// the snapshot format of package lease, taken on the raft leader (admin).
func (c *Client) Backup(ctx context.Context) ([]byte, error) {
	var raw json.RawMessage
	if _, err := c.do(ctx, call{method: "GET", path: "/v1/cluster/backup", out: &raw}); err != nil {
		return nil, err
	}
	return raw, nil
}

// ApplicationStatus returns one application's status: its units' agent and
// workload statuses and the application status (the app's units or admin).
func (c *Client) ApplicationStatus(ctx context.Context, app string) (api.ApplicationStatus, error) {
	var out api.ApplicationStatus
	_, err := c.do(ctx, call{method: "GET", path: "/v1/applications/" + url.PathEscape(app) + "/status", out: &out})
	return out, err
}
