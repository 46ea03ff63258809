package lease

import "fmt"

// ValidApplicationName reports whether name is a valid application name
// (Juju's rule: lower-case letters, digits and inner hyphens, starting with a
// letter, no hyphen-separated part made only of digits). It is the
// regular expression ^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$ written
// out: every API request checks a name, and the state machine does too.
func ValidApplicationName(name string) bool {
	if name == "" || !isLower(name[0]) {
		return false
	}
	letter := false // the current part has a letter
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case isLower(c):
			letter = true
		case c >= '0' && c <= '9':
		case c == '-' && letter:
			letter = false
		default:
			return false
		}
	}
	return letter
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// UnitApplication returns the application of a unit name "app/N", or an
// error wrapping ErrInvalidCommand if the name is malformed.
func UnitApplication(unit string) (string, error) {
	app, err := parseUnitName(unit)
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, ErrInvalidCommand)
	}
	return app, nil
}

// parseUnitName splits "app/N": a valid application name, one slash, and N
// a decimal of at most nine digits without a leading zero (the regular
// expression ^([^/]+)/(0|[1-9][0-9]{0,8})$ with the application checked).
func parseUnitName(unit string) (string, error) {
	slash := -1
	for i := 0; i < len(unit); i++ {
		if unit[i] == '/' {
			slash = i
			break
		}
	}
	if slash < 0 || !validUnitNumber(unit[slash+1:]) || !ValidApplicationName(unit[:slash]) {
		return "", fmt.Errorf("malformed unit name %q", unit)
	}
	return unit[:slash], nil
}

func validUnitNumber(n string) bool {
	if n == "" || len(n) > 9 || (n[0] == '0' && len(n) > 1) {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}
