// Package agentmetrics is one unit agent's Prometheus metrics and the
// opt-in listener that serves them (agent.yaml's metrics-addr, or `uniter
// agent --metrics-addr`). Metrics implements the observers of the
// executor, the hook runs, the machine lock, the leadership tracker and
// the hook-tool server, so that none of those packages knows Prometheus;
// what is a state rather than an event (error state, the lease's
// guarantee) is read at scrape time. docs/operations.md lists the metrics.
package agentmetrics

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uniter-dev/uniter/hooks"
	"github.com/uniter-dev/uniter/internal/clock"
	"github.com/uniter-dev/uniter/internal/version"
	"github.com/uniter-dev/uniter/leadership"
	"github.com/uniter-dev/uniter/operation"
)

// Config configures New.
type Config struct {
	// Unit and App name the agent in uniter_agent_info.
	Unit, App string
	// Clock times the guarantee left at scrape. Required.
	Clock clock.Clock
}

// Metrics are one agent's metrics, in a registry of their own. Its
// observer methods are safe for concurrent use and never block.
type Metrics struct {
	reg      *prometheus.Registry
	hookRuns *prometheus.CounterVec
	hookDur  *prometheus.HistogramVec
	ops      *prometheus.CounterVec
	isLeader *prometheus.CounterVec
	gained   prometheus.Counter
	lost     *prometheus.CounterVec
	lockWait prometheus.Histogram
	lockHold prometheus.Histogram
	state    *stateCollector
}

// hookBuckets span a quick hook to the hook timeout (1 h).
var hookBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// New returns the metrics of the agent of cfg.Unit.
func New(cfg Config) (*Metrics, error) {
	if cfg.Unit == "" || cfg.App == "" || cfg.Clock == nil {
		return nil, errors.New("cannot make agent metrics: unit, application and clock are required")
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_agent_hook_runs_total",
			Help: "Hook runs, by hook and outcome (ok, error, timeout, killed by a stop, missing).",
		}, []string{"hook", "outcome"}),
		hookDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uniter_agent_hook_duration_seconds",
			Help:    "How long hook runs took, by hook (every outcome).",
			Buckets: hookBuckets,
		}, []string{"hook"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_agent_operations_total",
			Help: "Operations the executor ended, by result (committed, skipped, failed).",
		}, []string{"result"}),
		isLeader: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_agent_is_leader_answers_total",
			Help: "Answers is-leader gave hooks, by answer (true, false).",
		}, []string{"answer"}),
		gained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uniter_agent_leadership_gained_total",
			Help: "Times this unit's tracker gained the application lease.",
		}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_agent_leadership_lost_total",
			Help: "Times this unit's tracker stopped holding the lease, by reason (taken, expired, refused, released).",
		}, []string{"reason"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uniter_agent_machine_lock_wait_seconds",
			Help:    "How long this agent waited for the machine lock.",
			Buckets: []float64{.001, .01, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600},
		}),
		lockHold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uniter_agent_machine_lock_hold_seconds",
			Help:    "How long this agent held the machine lock (one operation).",
			Buckets: hookBuckets,
		}),
		state: &stateCollector{clock: cfg.Clock},
	}
	// Series that alerts and rates compare exist from the start, at 0.
	for _, a := range []string{"true", "false"} {
		m.isLeader.WithLabelValues(a)
	}
	for _, r := range []leadership.LossReason{leadership.LostTaken, leadership.LostExpired, leadership.LostRefused, leadership.LostReleased} {
		m.lost.WithLabelValues(string(r))
	}
	for _, r := range []operation.Result{operation.Committed, operation.Skipped, operation.Failed} {
		m.ops.WithLabelValues(string(r))
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "uniter_agent_info",
		Help:        "1, labelled with the agent's unit, application and uniter version.",
		ConstLabels: prometheus.Labels{"unit": cfg.Unit, "application": cfg.App, "version": version.Version},
	})
	info.Set(1)
	m.reg.MustRegister(m.hookRuns, m.hookDur, m.ops, m.isLeader, m.gained, m.lost, m.lockWait, m.lockHold, info, m.state,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gatherer is the metrics' registry (tests read it directly).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// ReadErrorState makes uniter_agent_error_state read inError at every
// scrape (the executor's state: is the unit in error?).
func (m *Metrics) ReadErrorState(inError func() bool) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.inError = inError
}

// ReadLeadership makes uniter_agent_leader and
// uniter_agent_leadership_guarantee_seconds read g at every scrape (the
// tracker's Guarantee).
func (m *Metrics) ReadLeadership(g func() leadership.Guaranteed) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.guarantee = g
}

// HookRan implements operation.HookObserver.
func (m *Metrics) HookRan(kind hooks.Kind, outcome operation.HookOutcome, took time.Duration) {
	m.hookRuns.WithLabelValues(string(kind), string(outcome)).Inc()
	m.hookDur.WithLabelValues(string(kind)).Observe(took.Seconds())
}

// OperationEnded implements operation.Observer.
func (m *Metrics) OperationEnded(r operation.Result) { m.ops.WithLabelValues(string(r)).Inc() }

// IsLeaderAnswered implements hooktools.Observer.
func (m *Metrics) IsLeaderAnswered(leader bool) {
	m.isLeader.WithLabelValues(strconv.FormatBool(leader)).Inc()
}

// LeadershipGained implements leadership.Observer.
func (m *Metrics) LeadershipGained() { m.gained.Inc() }

// LeadershipLost implements leadership.Observer.
func (m *Metrics) LeadershipLost(why leadership.LossReason) {
	m.lost.WithLabelValues(string(why)).Inc()
}

// LockWaited implements machinelock.Observer.
func (m *Metrics) LockWaited(d time.Duration) { m.lockWait.Observe(d.Seconds()) }

// LockHeld implements machinelock.Observer.
func (m *Metrics) LockHeld(d time.Duration) { m.lockHold.Observe(d.Seconds()) }

// stateCollector reads the agent's state at scrape time, on the scrape's
// goroutine: no goroutine of its own, nothing kept between scrapes.
type stateCollector struct {
	clock     clock.Clock
	mu        sync.Mutex
	inError   func() bool
	guarantee func() leadership.Guaranteed
}

var (
	descError = prometheus.NewDesc("uniter_agent_error_state",
		"1 while the unit is in error state (a hook failed and was neither retried successfully nor resolved), else 0.", nil, nil)
	descLeader = prometheus.NewDesc("uniter_agent_leader",
		"1 while this unit's tracker holds the application lease, else 0.", nil, nil)
	descGuarantee = prometheus.NewDesc("uniter_agent_leadership_guarantee_seconds",
		"Seconds the lease this unit holds is still guaranteed to it by its own clock (0 when it holds none).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descError
	ch <- descLeader
	ch <- descGuarantee
}

// Collect implements prometheus.Collector. A reader not yet set (the
// agent is starting) leaves its metrics out.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	inError, guarantee := c.inError, c.guarantee
	c.mu.Unlock()
	if inError != nil {
		ch <- gauge(descError, boolFloat(inError()))
	}
	if guarantee != nil {
		g := guarantee()
		left := 0.0
		if g.Held {
			left = max(g.Until.Sub(c.clock.Now()).Seconds(), 0)
		}
		ch <- gauge(descLeader, boolFloat(g.Held))
		ch <- gauge(descGuarantee, left)
	}
}

func gauge(d *prometheus.Desc, v float64) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
