package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the dispatcher does.
type Metrics struct {
	deliveries *prometheus.CounterVec
	dead       prometheus.Counter
	duration   prometheus.Histogram
	lag        prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "intake", Subsystem: "webhook", Name: "deliveries_total",
			Help: "Delivery attempts by outcome: delivered (2xx), failed (anything else, or no answer).",
		}, []string{"outcome"}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "intake", Subsystem: "webhook", Name: "dead_lettered_total",
			Help: "Events given up on after --webhook-max-age (see intake events ls --failed).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "intake", Subsystem: "webhook", Name: "request_duration_seconds",
			Help:    "Duration of delivery requests, whatever their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "intake", Subsystem: "webhook", Name: "lag_seconds",
			Help: "Age of the oldest event in the last batch claimed for delivery; 0 when none was due.",
		}),
	}
	for _, o := range []string{"delivered", "failed"} {
		m.deliveries.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.dead, m.duration, m.lag)
	}
	return m
}

func (m *Metrics) attempt(ok bool, took time.Duration) {
	outcome := "failed"
	if ok {
		outcome = "delivered"
	}
	m.deliveries.WithLabelValues(outcome).Inc()
	m.duration.Observe(took.Seconds())
}
