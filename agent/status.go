package agent

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/uniter-dev/uniter/controller/api"
	"github.com/uniter-dev/uniter/internal/clock"
)

// Agent statuses, as `uniter status` shows them.
const (
	StatusIdle      = "idle"
	StatusExecuting = "executing"
	StatusError     = "error"
)

// StatusSetter writes a unit's status to the controller.
type StatusSetter interface {
	SetUnitStatus(ctx context.Context, unit, kind, status, message string) error
}

// statusReport is one agent status.
type statusReport struct{ status, message string }

// Reporter sends the agent's status to the controller on every change and
// as a heartbeat, from its own goroutine: the resolver loop never waits on
// the controller to report. Only the latest status is kept.
type Reporter struct {
	c         StatusSetter
	unit      string
	clock     clock.Clock
	log       zerolog.Logger
	heartbeat time.Duration
	latest    chan statusReport
}

// NewReporter returns a reporter; Run sends its reports.
func NewReporter(c StatusSetter, unit string, clk clock.Clock, log zerolog.Logger, heartbeat time.Duration) *Reporter {
	return &Reporter{c: c, unit: unit, clock: clk, log: log, heartbeat: heartbeat, latest: make(chan statusReport, 1)}
}

// Set records the agent's status; it never blocks.
func (r *Reporter) Set(status, message string) {
	rep := statusReport{status, message}
	for {
		select {
		case r.latest <- rep:
			return
		default:
		}
		select {
		case <-r.latest:
		default:
		}
	}
}

// Run sends reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	var cur statusReport
	var sent bool
	for {
		wait := r.heartbeat
		if cur.status != "" && !sent {
			wait = time.Second // retry a failed report
		}
		select {
		case <-ctx.Done():
			return
		case cur = <-r.latest:
		case <-r.clock.After(wait):
		}
		if cur.status == "" {
			continue
		}
		err := r.c.SetUnitStatus(ctx, r.unit, api.StatusAgent, cur.status, cur.message)
		sent = err == nil
		if err != nil && ctx.Err() == nil {
			r.log.Debug().Err(err).Msg("cannot report agent status")
		}
	}
}
