package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/controller/client"
	"github.com/uniter-dev/uniter/internal/testutil"
)

// TestBackupAndRestore backs up a controller with the CLI and bootstraps a
// new one from the backup: units, config and unit tokens come back.
func TestBackupAndRestore(t *testing.T) {
	c := startCluster(t, 1)
	u := c.addUnit("journal/0", "journal", nil)
	if res := c.run("config", "set", "journal", "count=5"); res.code != 0 {
		t.Fatalf("config set: %s", res.stderr)
	}
	backup := filepath.Join(t.TempDir(), "backup.json")
	if res := c.run("controller", "backup", backup); res.code != 0 {
		t.Fatalf("backup: exit %d: %s", res.code, res.stderr)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	api := freePort(t)
	p := startProc(t, filepath.Join(t.TempDir(), "restored.log"), nil, "controller", "--data-dir", dir,
		"--api-addr", api, "--raft-addr", freePort(t), "--restore", backup)
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	cf := filepath.Join(dir, "client.yaml")
	var cl *client.Client
	testutil.WaitUntil(t, 30*time.Second, "the restored controller", func() bool {
		if cl == nil {
			f, err := client.ReadFile(cf)
			if err != nil {
				return false
			}
			if cl, err = client.New(f.Config()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
		}
		cfg, err := cl.Config(context.Background(), "journal")
		return err == nil && cfg.Values["count"] == "5"
	})
	st, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Applications["journal"].Units["journal/0"]; !ok {
		t.Fatalf("restored status has no journal/0: %+v", st)
	}
	// The unit's own token still works against the restored controller.
	token, err := os.ReadFile(filepath.Join(u.dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := client.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	ucfg := rf.Config()
	ucfg.Addresses, ucfg.Token = []string{api}, strings.TrimSpace(string(token))
	unit, err := client.New(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	defer unit.Close()
	if _, err := unit.Config(context.Background(), "journal"); err != nil {
		t.Fatalf("the unit's token against the restored controller: %v", err)
	}
	// Restoring over an existing node's state is refused.
	res := runUniter(t, "controller", "--data-dir", c.nodes[0].dir, "--restore", backup)
	if res.code != 1 {
		t.Fatalf("restore over an existing data dir: exit %d, want 1: %s", res.code, res.stderr)
	}
}
