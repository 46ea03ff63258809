package lease

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The regular expressions the hand-written name checks replace: the
// checks must agree with them on every input (the state machine refuses
// names by them, and every node must refuse the same ones).
var (
	appNameRE  = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$`)
	unitNameRE = regexp.MustCompile(`^([^/]+)/(0|[1-9][0-9]{0,8})$`)
)

func refParseUnitName(unit string) (string, bool) {
	m := unitNameRE.FindStringSubmatch(unit)
	if m == nil || !appNameRE.MatchString(m[1]) {
		return "", false
	}
	return m[1], true
}

func checkNames(t *testing.T, s string) {
	t.Helper()
	if got, want := ValidApplicationName(s), appNameRE.MatchString(s); got != want {
		t.Errorf("ValidApplicationName(%q) = %v, the expression says %v", s, got, want)
	}
	app, err := parseUnitName(s)
	wantApp, ok := refParseUnitName(s)
	if (err == nil) != ok || app != wantApp {
		t.Errorf("parseUnitName(%q) = %q, %v; the expression says %q, %v", s, app, err, wantApp, ok)
	}
}

func TestNamesMatchTheExpressions(t *testing.T) {
	for _, s := range []string{"", "a", "A", "1", "-", "a-", "-a", "a--b", "a-1", "a-1b", "a-b1", "ab-cd-ef", "a1-2-b",
		"db/0", "db/00", "db/01", "db/10", "db/123456789", "db/1234567890", "db/", "/0", "db/0/1", "db//0", "d b/0",
		"db/-1", "db/+1", "a-1/0", "a-b/7", "é/0", "db/٣", "web\n/0", "x-y-z/999999999"} {
		checkNames(t, s)
	}
	alphabet := []byte("ab09-/Z\x00é")
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, r.IntN(14))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		checkNames(t, string(b))
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"db/0", "a-b/12", "a-1", "x/01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkNames(t, s) })
}
