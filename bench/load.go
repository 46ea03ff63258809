package bench

import (
	"context"
	"sync"
	"time"
)

// loadResult is what a closed-loop load run measured.
type loadResult struct {
	ops, errs int
	latency   []float64 // ms, of every successful op
	elapsed   time.Duration
	firstErr  error
}

// opsPerSec is the rate of successful operations.
func (r loadResult) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// runLoad runs a closed loop for window: each of clients goroutines calls
// op(ctx, client, seq) back to back, seq counting that client's calls.
func runLoad(ctx context.Context, clients int, window time.Duration, op func(ctx context.Context, client, seq int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	per := make([]loadResult, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &per[i]
			for seq := 0; ctx.Err() == nil; seq++ {
				t := time.Now()
				err := op(ctx, i, seq)
				switch {
				case ctx.Err() != nil:
					// cut off by the window: not counted
				case err != nil:
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
				default:
					r.ops++
					r.latency = append(r.latency, float64(time.Since(t))/1e6)
				}
			}
		}()
	}
	wg.Wait()
	total := loadResult{elapsed: time.Since(start)}
	for _, r := range per {
		total.ops += r.ops
		total.errs += r.errs
		total.latency = append(total.latency, r.latency...)
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	return total
}
