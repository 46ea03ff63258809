package controller

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gometricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uniter-dev/uniter/lease"
)

// metrics are the controller node's Prometheus metrics, served at
// GET /metrics (docs/operations.md, "Metrics", lists them with alerts).
// Request counters are updated as requests are answered; everything read
// from raft or the state machine is collected at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	leaseOps *prometheus.CounterVec
}

// leaseRoutes names the lease calls whose outcomes uniter_lease_calls_total
// counts.
var leaseRoutes = map[string]string{
	"POST /v1/leases/{app}/claim":  "claim",
	"POST /v1/leases/{app}/extend": "extend",
	"POST /v1/leases/{app}/revoke": "revoke",
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_api_requests_total",
			Help: "API requests answered by this node, by route pattern and HTTP status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uniter_api_request_duration_seconds",
			Help:    "Time to answer an API request, by route pattern (blocking queries include their wait).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 300},
		}, []string{"route"}),
		leaseOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uniter_lease_calls_total",
			Help: "Lease claims, extends and revokes answered by this node, by outcome: ok, denied (409) or error.",
		}, []string{"op", "outcome"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.leaseOps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uniter_api_blocking_queries",
			Help: "Blocking queries (agents' watches) parked on this node now.",
		}, func() float64 { return float64(len(s.waiters)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "uniter_api_parked_watches",
			Help: "Unit watches among the blocking queries that wait parked, holding their connection but no goroutine.",
		}, func() float64 {
			if p := s.parker.Load(); p != nil {
				return float64(p.count.Load())
			}
			return 0
		}),
		&stateCollector{s: s})
	return m
}

// observe records one answered request.
func (m *metrics) observe(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
	if op, ok := leaseRoutes[route]; ok {
		outcome := "error"
		switch {
		case status/100 == 2:
			outcome = "ok"
		case status == http.StatusConflict:
			outcome = "denied"
		}
		m.leaseOps.WithLabelValues(op, outcome).Inc()
	}
}

// stateCollector reads raft and the state machine at scrape time.
type stateCollector struct{ s *Server }

var (
	descRaftState = prometheus.NewDesc("uniter_raft_state",
		"1 for this node's raft state (leader, follower, candidate, shutdown), 0 for the others.", []string{"state"}, nil)
	descRaftTerm        = prometheus.NewDesc("uniter_raft_term", "Raft's current term on this node.", nil, nil)
	descRaftLastContact = prometheus.NewDesc("uniter_raft_last_contact_seconds",
		"Seconds since this follower last heard from the raft leader (0 on the leader).", nil, nil)
	descRaftCommit   = prometheus.NewDesc("uniter_raft_commit_index", "Raft's commit index on this node.", nil, nil)
	descRaftApplied  = prometheus.NewDesc("uniter_raft_applied_index", "The last raft index this node's state machine applied.", nil, nil)
	descLeasesHeld   = prometheus.NewDesc("uniter_leases_held", "Application leases with a holder.", nil, nil)
	descLeasesPinned = prometheus.NewDesc("uniter_leases_pinned", "Application leases pinned by an operator.", nil, nil)
	descLeaseTerm    = prometheus.NewDesc("uniter_lease_term",
		"An application's lease term: each increase is a leadership change (use changes() or increase()).", []string{"application"}, nil)
	descExpired = prometheus.NewDesc("uniter_lease_expiries_total",
		"Leases released by the global time passing their expiry, as this node applied them.", nil, nil)
	descUnits        = prometheus.NewDesc("uniter_units", "Registered units, by life.", []string{"life"}, nil)
	descBatchEntries = prometheus.NewDesc("uniter_raft_batch_entries_total",
		"Raft log entries this node's batcher proposed while it led (each one append and fsync).", nil, nil)
	descBatchCommands = prometheus.NewDesc("uniter_raft_batch_commands_total",
		"Commands those entries carried: divided by uniter_raft_batch_entries_total, the commands per entry.", nil, nil)
	descLeaderRenewals = prometheus.NewDesc("uniter_lease_leader_renewals_total",
		"Lease renewals this node answered from memory while it led, written to the log before its next time advance (protocol 7).", nil, nil)
	descReady = prometheus.NewDesc("uniter_node_ready",
		"1 when this node knows a raft leader and is caught up (GET /v1/ready), else 0.", nil, nil)
)

var raftStates = []string{"leader", "follower", "candidate", "shutdown"}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descRaftLastContact, descRaftCommit, descRaftApplied,
		descLeasesHeld, descLeasesPinned, descLeaseTerm, descExpired, descUnits, descReady, descBatchEntries, descBatchCommands, descLeaderRenewals} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	node := c.s.node
	st := node.Stats()
	for _, state := range raftStates {
		ch <- gauge(descRaftState, boolFloat(st.State == state), state)
	}
	ch <- gauge(descRaftTerm, float64(st.Term))
	contact := 0.0
	if st.State != "leader" && !st.LastContact.IsZero() {
		contact = c.s.cfg.Clock.Now().Sub(st.LastContact).Seconds()
	}
	ch <- gauge(descRaftLastContact, contact)
	ch <- gauge(descRaftCommit, float64(st.CommitIndex))
	ch <- gauge(descRaftApplied, float64(st.AppliedIndex))
	ch <- gauge(descReady, boolFloat(node.Ready() == nil))
	entries, commands := node.BatchStats()
	ch <- prometheus.MustNewConstMetric(descBatchEntries, prometheus.CounterValue, float64(entries))
	ch <- prometheus.MustNewConstMetric(descBatchCommands, prometheus.CounterValue, float64(commands))
	ch <- prometheus.MustNewConstMetric(descLeaderRenewals, prometheus.CounterValue, float64(node.LeaderRenewals()))

	fsm := node.FSM()
	held, pinned := 0, 0
	for _, a := range fsm.Applications() {
		if a.Lease.Holder != "" {
			held++
		}
		if a.Lease.Pinned() {
			pinned++
		}
		ch <- gauge(descLeaseTerm, float64(a.Lease.Term), a.Name)
	}
	ch <- gauge(descLeasesHeld, float64(held))
	ch <- gauge(descLeasesPinned, float64(pinned))
	ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(fsm.Expired()))
	lives := map[string]int{lease.LifeAlive: 0, lease.LifeDying: 0}
	for _, u := range fsm.Units() {
		lives[string(u.Life)]++
	}
	for life, n := range lives {
		ch <- gauge(descUnits, float64(n), life)
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics answers GET /metrics: the admin token, or the metrics token
// when the node was given one (Config.MetricsTokenHash), may read it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	hash := lease.HashToken(token)
	admin := subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.AdminTokenHash)) == 1
	metricsToken := s.cfg.MetricsTokenHash != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(s.cfg.MetricsTokenHash)) == 1
	if !hasBearer(r) || (!admin && !metricsToken) {
		status, body := errorResponse(errUnauthorized)
		writeJSON(w, status, body)
		return
	}
	promhttp.HandlerFor(prometheus.Gatherers{s.metrics.reg, raftMetrics()}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

var (
	raftMetricsOnce sync.Once
	raftRegistry    = prometheus.NewRegistry()
)

// raftMetrics is the registry of what hashicorp/raft measures itself
// (commit and apply times, FSM apply, snapshots, ...: uniter_raft_*
// summaries), bridged from go-metrics, whose sink is process-wide: the
// first controller of a process installs it.
func raftMetrics() prometheus.Gatherer {
	raftMetricsOnce.Do(func() {
		sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{
			Registerer: raftRegistry, Expiration: 10 * time.Minute,
		})
		if err != nil {
			return
		}
		cfg := gometrics.DefaultConfig("uniter")
		cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableServiceLabel = false, false, false
		gometrics.NewGlobal(cfg, sink)
	})
	return raftRegistry
}
