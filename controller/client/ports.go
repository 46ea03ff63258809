package client

import (
	"context"
	"net/http"

	"github.com/uniter-dev/uniter/controller/api"
)

// OpenedPorts returns the port ranges the unit has opened, as committed
// (the unit itself, or admin); [] when none.
func (c *Client) OpenedPorts(ctx context.Context, unit string) ([]api.PortRange, error) {
	path, err := unitPath(unit, "/ports")
	if err != nil {
		return nil, err
	}
	var out api.UnitPorts
	if _, err := c.do(ctx, call{method: http.MethodGet, path: path, out: &out}); err != nil {
		return nil, err
	}
	if out.Ports == nil {
		out.Ports = []api.PortRange{}
	}
	return out.Ports, nil
}

// SetUnitPorts commits what one hook of the unit did with open-port and
// close-port: close is applied first, then open (see api.PortsRequest).
// Refusals: a malformed range or unknown endpoint (400 bad-request),
// more ranges than the per-unit limit (api.ErrLimitExceeded), a cluster
// below protocol 5 (api.ErrNeedsProtocol).
func (c *Client) SetUnitPorts(ctx context.Context, unit string, open, close []api.PortRange) error {
	path, err := unitPath(unit, "/ports")
	if err != nil {
		return err
	}
	return c.write(ctx, http.MethodPost, path, api.PortsRequest{Open: open, Close: close})
}
