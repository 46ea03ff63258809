package hooktools

import (
	"fmt"
	"os"
	"path/filepath"
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
// uniterExe point at: [ClientPath] when it is an executable regular file
// (small is true), else uniterExe itself, which acts as every tool too but
// takes longer to start.
func ToolTarget(uniterExe string) (target string, small bool) {
	path := ClientPath(uniterExe)
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return uniterExe, false
	}
	return path, true
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
