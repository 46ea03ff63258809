package proc

import (
	"context"
	"sync"
	"time"
)

// Sampler reads a set of processes every interval until stopped.
type Sampler struct {
	mu      sync.Mutex
	samples map[int][]Sample
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartSampler samples pids now and then every interval.
func StartSampler(pids []int, interval time.Duration) *Sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sampler{samples: map[int][]Sample{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample(pids)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *Sampler) sample(pids []int) {
	for _, pid := range pids {
		if smp, err := Read(pid); err == nil {
			s.mu.Lock()
			s.samples[pid] = append(s.samples[pid], smp)
			s.mu.Unlock()
		}
	}
}

// Stop takes a last sample of every process and stops sampling.
func (s *Sampler) Stop(pids []int) {
	s.cancel()
	<-s.done
	s.sample(pids)
}

// Samples returns the samples of pid, oldest first.
func (s *Sampler) Samples(pid int) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples[pid]...)
}

// Usage summarises samples of one process.
type Usage struct {
	// CPUPercent is the mean over the whole span, in % of one core.
	CPUPercent float64
	// RSSMB are the resident sizes sampled, in MiB; PeakMB is VmHWM at
	// the end.
	RSSMB  []float64
	PeakMB float64
}

// Summarize returns the usage over samples (at least two for the CPU).
func Summarize(samples []Sample) Usage {
	var u Usage
	for _, s := range samples {
		u.RSSMB = append(u.RSSMB, MB(s.RSSKB))
	}
	if n := len(samples); n > 0 {
		u.PeakMB = MB(samples[n-1].HWMKB)
		if n > 1 {
			u.CPUPercent = CPUPercent(samples[0], samples[n-1])
		}
	}
	return u
}
