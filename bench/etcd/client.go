package etcd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client calls etcd's JSON gateway (/v3/...) over HTTP/1.1 keep-alive.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the member at endpoint (a client URL).
func NewClient(endpoint string) *Client {
	return &Client{base: endpoint, hc: &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
	}}}
}

// post sends body as JSON to path and decodes the answer into out.
func (c *Client) post(ctx context.Context, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("cannot encode %s request: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("cannot call etcd %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot call etcd %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot read etcd %s answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s answered %d: %s", path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("cannot decode etcd %s answer %q: %w", path, raw, err)
	}
	return nil
}

// Grant grants a lease of ttl seconds and returns its ID.
func (c *Client) Grant(ctx context.Context, ttl int64) (string, error) {
	var out struct {
		ID    string `json:"ID"`
		Error string `json:"error"`
	}
	if err := c.post(ctx, "/v3/lease/grant", map[string]any{"TTL": ttl}, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("etcd granted no lease: %s", out.Error)
	}
	return out.ID, nil
}

// KeepAlive renews lease id once; an expired lease is an error.
func (c *Client) KeepAlive(ctx context.Context, id string) error {
	var out struct {
		Result struct {
			TTL string `json:"TTL"`
		} `json:"result"`
	}
	if err := c.post(ctx, "/v3/lease/keepalive", map[string]any{"ID": id}, &out); err != nil {
		return err
	}
	if out.Result.TTL == "" || out.Result.TTL == "0" {
		return fmt.Errorf("etcd lease %s has expired", id)
	}
	return nil
}

// Health checks the member answers /health with health true.
func (c *Client) Health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot check etcd health: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Health != "true" {
		return fmt.Errorf("etcd at %s is not healthy (%d)", c.base, resp.StatusCode)
	}
	return nil
}
