package pglock

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what happens between instances. A nil *Metrics counts
// nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	sessionsLost prometheus.Counter
	locksLost    prometheus.Counter
}

// NewMetrics registers the lock metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_lock_release_requests_total",
			Help: "Requests to release an upload lock held on another instance: sent by waiters here, received for locks held here.",
		}, []string{"direction"}),
		sessionsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_lock_sessions_lost_total",
			Help: "Times the PostgreSQL lock session failed, releasing every lock held on it.",
		}),
		locksLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_locks_lost_total",
			Help: "Upload locks lost with their session while a request held them; the request was asked to release.",
		}),
	}
	// Both directions appear from the start, so rates work before the first.
	m.requests.WithLabelValues("sent")
	m.requests.WithLabelValues("received")
	reg.MustRegister(m.requests, m.sessionsLost, m.locksLost)
	return m
}

func (m *Metrics) requestSent() {
	if m != nil {
		m.requests.WithLabelValues("sent").Inc()
	}
}

func (m *Metrics) requestReceived() {
	if m != nil {
		m.requests.WithLabelValues("received").Inc()
	}
}

func (m *Metrics) sessionLost() {
	if m != nil {
		m.sessionsLost.Inc()
	}
}

func (m *Metrics) lockLost() {
	if m != nil {
		m.locksLost.Inc()
	}
}
