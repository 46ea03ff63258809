package controller

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
	"github.com/uniter-dev/uniter/internal/pki"
)

// TestRenewBeforeExpiry: a running node issues itself a new certificate
// once less than renewBefore of its own is left, and not before.
func TestRenewBeforeExpiry(t *testing.T) {
	clk := clocktest.New(time.Now())
	tl, err := bootstrapTLS(t.TempDir(), "node-1", nodeHosts("127.0.0.1:1"), clk)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string { return tl.describe().Serial }
	first := serial()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); tl.renew(ctx, zerolog.Nop()) }()
	defer func() { cancel(); <-done }()
	wait := func() {
		t.Helper()
		wctx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if err := clk.WaitForWaiters(wctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	wait()
	// Up to a check before the renewal point: still the first certificate.
	clk.Advance(pki.CertValidity - renewBefore - renewEvery/2)
	wait()
	if serial() != first {
		t.Fatal("renewed with more than renewBefore left")
	}
	clk.Advance(renewEvery) // now past the renewal point
	wait()
	renewed := serial()
	if renewed == first {
		t.Fatal("not renewed with less than renewBefore left")
	}
	if left := tl.kp.Leaf().NotAfter.Sub(clk.Now()); left < pki.CertValidity-2*time.Hour {
		t.Errorf("the renewed certificate has %v left", left)
	}
	clk.Advance(renewEvery)
	wait()
	if serial() != renewed {
		t.Error("renewed again a fresh certificate")
	}
}
