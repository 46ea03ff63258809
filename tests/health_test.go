package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/testutil"
)

// probe GETs path on addr over HTTPS with no token, trusting the CA that
// the client config cf pins, and returns the status and the decoded body.
func probe(cf, addr, path string) (int, map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hc, err := pinnedHTTP(cf)
	if err != nil {
		return 0, nil
	}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]string
	json.Unmarshal(data, &body)
	return resp.StatusCode, body
}

// TestReadyFollowsTheCluster: /v1/health and /v1/ready need no token;
// /v1/ready says 503, with the reason, on a node cut off from the rest
// (the other two SIGSTOPped) and 200 again once they are back, while
// /v1/health stays 200 throughout.
func TestReadyFollowsTheCluster(t *testing.T) {
	c := startCluster(t, 3)
	nd := c.nodes[2]
	testutil.WaitUntil(t, 30*time.Second, "node 2 ready", func() bool { code, _ := probe(c.clientFile, nd.api, "/v1/ready"); return code == 200 })
	if code, body := probe(c.clientFile, nd.api, "/v1/health"); code != 200 || body["status"] != "ok" {
		t.Fatalf("health: %d %v", code, body)
	}
	for _, other := range c.nodes[:2] {
		other.p.signal(syscall.SIGSTOP)
	}
	resumed := false
	resume := func() {
		if !resumed {
			for _, other := range c.nodes[:2] {
				other.p.signal(syscall.SIGCONT)
			}
			resumed = true
		}
	}
	t.Cleanup(resume)
	var reason string
	testutil.WaitUntil(t, 30*time.Second, "node 2 to say it is not ready", func() bool {
		code, body := probe(c.clientFile, nd.api, "/v1/ready")
		reason = body["reason"]
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(reason, "leader") {
		t.Errorf("not-ready reason %q does not mention the raft leader", reason)
	}
	if code, _ := probe(c.clientFile, nd.api, "/v1/health"); code != 200 {
		t.Errorf("health answered %d while the node was cut off, want 200 (the process serves)", code)
	}
	resume()
	testutil.WaitUntil(t, 30*time.Second, "node 2 ready again", func() bool { code, _ := probe(c.clientFile, nd.api, "/v1/ready"); return code == 200 })
}
