package hooktools

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/uniter-dev/uniter/hooktools/toolclient"
)

// ClientBinary is the name of the small hook-tool binary (cmd/uniter-hooktools),
// installed beside the uniter binary.
const ClientBinary = "uniter-hooktools"

// ClientPath is where the small hook-tool binary belongs for the uniter
// binary at uniterExe: the same directory.
func ClientPath(uniterExe string) string {
	return filepath.Join(filepath.Dir(uniterExe), ClientBinary)
}

// ToolTarget chooses what the tool symlinks of the uniter binary at
// uniterExe point at: [ClientPath] when it can stand in for the uniter
// binary (small is true), else uniterExe itself, which acts as every tool
// too but takes longer to start; why then says what ruled the small one
// out. The small binary must be an executable regular file (a symlink to
// one will do), owned by root or by the uniter binary's owner and not
// writable by group or others (hooks often run as root: nobody else may
// plant it), and `uniter-hooktools --describe` must print exactly this
// build's [toolclient.Describe]: the same wire protocol and tools, so a
// uniter upgraded without it falls back rather than breaking tools.
func ToolTarget(uniterExe string) (target string, small bool, why string) {
	path := ClientPath(uniterExe)
	if why := checkClient(path, uniterExe); why != "" {
		return uniterExe, false, why
	}
	return path, true, ""
}

// describeTimeout bounds the run of `uniter-hooktools --describe`.
const describeTimeout = 5 * time.Second

// checkClient says why the binary at path cannot serve as the hook tools
// of the uniter binary at uniterExe ("" if it can).
func checkClient(path, uniterExe string) string {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not installed"
	case err != nil:
		return err.Error()
	case !info.Mode().IsRegular():
		return "not a regular file"
	case info.Mode().Perm()&0o111 == 0:
		return "not executable"
	case info.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("writable by group or others (mode %v)", info.Mode().Perm())
	}
	if exe, err := os.Stat(uniterExe); err == nil {
		owner, want := fileOwner(info), fileOwner(exe)
		if owner != 0 && owner != want {
			return fmt.Sprintf("owned by uid %d, not root or the uniter binary's owner (uid %d)", owner, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, toolclient.DescribeFlag).Output()
	if err != nil {
		return fmt.Sprintf("%s %s failed: %v", path, toolclient.DescribeFlag, err)
	}
	if got, want := strings.TrimSpace(string(out)), toolclient.Describe(); got != want {
		return fmt.Sprintf("another release: it says %q, this agent wants %q", got, want)
	}
	return ""
}

// fileOwner is the uid that owns the file info describes.
func fileOwner(info fs.FileInfo) uint32 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// InstallSymlinks makes toolsDir hold one symlink per hook tool, each
// pointing at target (the binary [ToolTarget] chose; an absolute path). It
// creates toolsDir if needed and replaces any other file of a tool's name,
// each link atomically, so it is safe to run at every agent start.
func InstallSymlinks(toolsDir, target string) error {
	if !filepath.IsAbs(target) {
		return fmt.Errorf("cannot install hook tools: target %q is not an absolute path", target)
	}
	if err := os.MkdirAll(toolsDir, 0o755); err != nil {
		return fmt.Errorf("cannot install hook tools: %w", err)
	}
	for _, name := range ToolNames() {
		if err := installSymlink(filepath.Join(toolsDir, name), target); err != nil {
			return fmt.Errorf("cannot install hook tools: %w", err)
		}
	}
	return nil
}

func installSymlink(path, target string) error {
	if cur, err := os.Readlink(path); err == nil && cur == target {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
