package clocktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/uniter-dev/uniter/internal/clock/clocktest"
)

func TestTimerFiresOnlyWhenDue(t *testing.T) {
	start := time.Unix(1000, 0)
	c := clocktest.New(start)
	tm := c.NewTimer(5 * time.Second)
	c.Advance(4 * time.Second)
	select {
	case <-tm.Chan():
		t.Fatal("timer fired early")
	default:
	}
	c.Advance(time.Second)
	select {
	case got := <-tm.Chan():
		if want := start.Add(5 * time.Second); !got.Equal(want) {
			t.Fatalf("fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("timer did not fire when due")
	}
	if c.Waiters() != 0 {
		t.Fatalf("waiters = %d after firing, want 0", c.Waiters())
	}
}

func TestStopAndReset(t *testing.T) {
	c := clocktest.New(time.Unix(0, 0))
	tm := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an active timer reported inactive")
	}
	c.Advance(2 * time.Second)
	select {
	case <-tm.Chan():
		t.Fatal("stopped timer fired")
	default:
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer reported active")
	}
	c.Advance(time.Second)
	select {
	case <-tm.Chan():
	default:
		t.Fatal("reset timer did not fire")
	}
}

func TestWaitForWaiters(t *testing.T) {
	c := clocktest.New(time.Unix(0, 0))
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-c.After(time.Minute)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitForWaiters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	<-done
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if err := c.WaitForWaiters(ctx2, 1); err == nil {
		t.Fatal("WaitForWaiters succeeded with no timers pending")
	}
}
