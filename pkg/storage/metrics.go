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

	dedupHits        *prometheus.CounterVec
	dedupBytesSaved  prometheus.Counter
	digestFallbacks  prometheus.Counter
	digestMismatches prometheus.Counter
	rejected         prometheus.Counter
	reaped           prometheus.Counter
	bytesReleased    prometheus.Counter
	orphansRemoved   *prometheus.CounterVec
}

// dedupHit counts content that did not have to be stored (kind "finish")
// or sent at all ("create", "preflight").
func (m *Metrics) dedupHit(kind string, size int64) {
	m.dedupHits.WithLabelValues(kind).Inc()
	if kind != "preflight" {
		m.dedupBytesSaved.Add(float64(size))
	}
}

// PreflightHit counts a blob preflight answered "already stored".
func (m *Metrics) PreflightHit() { m.dedupHit("preflight", 0) }

// OrphansRemoved counts n pieces of storage no session knew, removed:
// kind multipart (S3 multipart uploads), object (S3 objects), file (file
// store files) or temp (local S3 part files left by a previous process).
func (m *Metrics) OrphansRemoved(kind string, n int) {
	if n > 0 {
		m.orphansRemoved.WithLabelValues(kind).Add(float64(n))
	}
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
	m.dedupHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "intake", Name: "dedup_hits_total",
		Help: "Content found already stored: kind=preflight (answered before a transfer), create (upload complete on creation), finish (stored copy dropped).",
	}, []string{"kind"})
	for _, kind := range []string{"preflight", "create", "finish"} {
		m.dedupHits.WithLabelValues(kind)
	}
	m.dedupBytesSaved = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "dedup_bytes_saved_total",
		Help: "Bytes not stored again (finish) or not transferred at all (create).",
	})
	m.digestFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "digest_fallbacks_total",
		Help: "Digests computed by reading the stored object back, because no streamed state covered the upload.",
	})
	m.digestMismatches = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "digest_mismatches_total",
		Help: "Uploads failed because their bytes did not match the declared sha256.",
	})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "uploads_rejected_total",
		Help: "Uploads rejected at finalization because their sniffed type is not allowed.",
	})
	m.reaped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "uploads_reaped_total",
		Help: "Incomplete uploads expired by the reaper, their storage released.",
	})
	m.bytesReleased = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "intake", Name: "reaped_bytes_released_total",
		Help: "Bytes of expired uploads released by the reaper.",
	})
	m.orphansRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "intake", Name: "orphans_removed_total",
		Help: "Storage no session knew, removed by the orphan sweep: kind=multipart (S3 multipart uploads), object (S3 objects), file (file store files), temp (local S3 part files at start).",
	}, []string{"kind"})
	for _, kind := range []string{"multipart", "object", "file", "temp"} {
		m.orphansRemoved.WithLabelValues(kind)
	}
	if reg != nil {
		reg.MustRegister(m.rejected, m.reaped, m.bytesReleased, m.orphansRemoved)
		reg.MustRegister(m.created, m.completed, m.terminated, m.bytesReceived,
			m.dedupHits, m.dedupBytesSaved, m.digestFallbacks, m.digestMismatches)
	}
	return m
}
