// Package version is the binary's version and the range of controller
// protocol versions it speaks. All three are strings so that a build can
// set them with the linker:
//
//	go build -ldflags "-X github.com/uniter-dev/uniter/internal/version.ProtocolMax=1" ./cmd/uniter
//
// (the end-to-end upgrade test builds a "version 1" binary this way).
package version

import (
	"fmt"
	"runtime/debug"
	"strconv"
)

// Build-time settings (see the package doc).
var (
	// Version is the release of this binary.
	Version = "0.1.0-dev"
	// ProtocolMin and ProtocolMax bound the controller protocol versions
	// this binary speaks (docs/upgrades.md). A build may narrow the range
	// the code implements (lease.MinProtocol..lease.MaxProtocol), never
	// widen it: the controller refuses to start with a range its code
	// does not implement.
	ProtocolMin = "1"
	ProtocolMax = "7"
	// Commit is the source revision; when the linker does not set it
	// (make release does), Revision falls back to what the go command
	// recorded from the checkout.
	Commit = ""
)

// Revision returns the source revision this binary was built from, with
// "+dirty" if the checkout had uncommitted changes, or "unknown".
func Revision() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// Protocol returns ProtocolMin and ProtocolMax as numbers, checking that
// 1 <= min <= max.
func Protocol() (min, max uint64, err error) {
	min, err1 := strconv.ParseUint(ProtocolMin, 10, 64)
	max, err2 := strconv.ParseUint(ProtocolMax, 10, 64)
	if err1 != nil || err2 != nil || min < 1 || min > max {
		return 0, 0, fmt.Errorf("bad controller protocol range %q..%q built into this binary", ProtocolMin, ProtocolMax)
	}
	return min, max, nil
}
