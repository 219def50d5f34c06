package storage

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the store does. Upload counts are of events the
// catalog recorded, so they agree with `intake uploads ls`; bytes are those
// the backend accepted, whether or not the catalog could record them yet.
type Metrics struct {
	created       prometheus.Counter
	completed     prometheus.Counter
	terminated    prometheus.Counter
	bytesReceived prometheus.Counter
}

// NewMetrics creates the counters and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "intake", Name: "uploads_created_total",
			Help: "Uploads created (sessions recorded).",
		}),
		completed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "intake", Name: "uploads_completed_total",
			Help: "Uploads completed and finalized.",
		}),
		terminated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "intake", Name: "uploads_terminated_total",
			Help: "Uploads terminated by their client.",
		}),
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "intake", Name: "bytes_received_total",
			Help: "Upload bytes written to the store.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.completed, m.terminated, m.bytesReceived)
	}
	return m
}
