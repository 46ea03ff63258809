package hooks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// findHandler returns the path to run for kind: dispatch at the charm root
// if it is executable, else hooks/<kind>. The path is joined, never
// symlink-resolved: charmhelpers picks its handler from basename(argv[0]).
//
// A non-executable dispatch does not hide an executable hooks/<kind>
// (HOOK-TOOLS.md: "otherwise run hooks/<hook>"); it is reported as
// ErrNotExecutable only when it is the sole handler there is.
func findHandler(charmDir string, kind Kind) (string, error) {
	return findHandlerIn(charmDir, "hooks", string(kind))
}

// findHandlerIn is findHandler for the handler dir/name of the charm
// (hooks/<kind>, actions/<name>).
func findHandlerIn(charmDir, dir, name string) (string, error) {
	dispatch := filepath.Join(charmDir, "dispatch")
	dispatchExists, dispatchErr := checkExecutable(dispatch)
	if dispatchExists && dispatchErr == nil {
		return dispatch, nil
	}
	legacy := filepath.Join(charmDir, dir, name)
	legacyExists, legacyErr := checkExecutable(legacy)
	switch {
	case legacyExists:
		return legacy, legacyErr
	case dispatchExists:
		return "", dispatchErr
	}
	return "", ErrMissing
}

// checkExecutable reports whether something exists at path and, if it
// does, an ErrNotExecutable naming it unless it is an executable file.
func checkExecutable(path string) (exists bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		if _, lerr := os.Lstat(path); lerr == nil {
			return true, fmt.Errorf("%w: %s is a dangling symlink", ErrNotExecutable, path)
		}
		return false, nil
	case err != nil:
		return true, fmt.Errorf("%w: %v", ErrNotExecutable, err)
	case !fi.Mode().IsRegular():
		return true, fmt.Errorf("%w: %s is not a regular file (mode %v)", ErrNotExecutable, path, fi.Mode())
	case fi.Mode().Perm()&0o111 == 0:
		return true, fmt.Errorf("%w: %s (mode %v)", ErrNotExecutable, path, fi.Mode())
	}
	return true, nil
}
