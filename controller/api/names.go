package api

import (
	"fmt"
	"regexp"
	"strconv"
)

// Names on the wire follow Juju's rule: an application name is lower-case
// letters, digits and inner hyphens, starts with a letter, and has no
// hyphen-separated part made only of digits; a unit is APP/N. The
// controller's state machine applies the same rule to every command; the
// client checks it first so that a malformed name never reaches a path.
var (
	appNameRE  = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$`)
	unitNameRE = regexp.MustCompile(`^([^/]+)/(0|[1-9][0-9]{0,8})$`)
	// endpointNameRE is Juju's rule for endpoint and interface names.
	endpointNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*([_-][a-z0-9]+)*$`)
)

// SplitUnit splits a unit name "APP/N" into its application and number. A
// malformed name gives an error matching ErrInvalidCommand, as the
// controller would answer.
func SplitUnit(unit string) (app string, n uint64, err error) {
	m := unitNameRE.FindStringSubmatch(unit)
	if m == nil || !appNameRE.MatchString(m[1]) {
		return "", 0, fmt.Errorf("malformed unit name %q: %w", unit, ErrInvalidCommand)
	}
	n, _ = strconv.ParseUint(m[2], 10, 64)
	return m[1], n, nil
}

// ValidApplicationName reports whether name is a valid application name.
func ValidApplicationName(name string) bool { return appNameRE.MatchString(name) }
