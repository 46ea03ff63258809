// Package testutil holds helpers shared by tests: waiting for a condition
// with a deadline, instead of sleeping.
package testutil

import (
	"testing"
	"time"
)

// WaitUntil polls cond until it returns true, failing the test with what if
// it has not within timeout. The short poll interval is the only sleep
// tests use.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
