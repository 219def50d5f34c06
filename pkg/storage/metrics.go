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
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "intake", Name: name, Help: help})
	}
	// Each kind's series is created up front, so that it reads 0 rather
	// than missing until its first event.
	byKind := func(name, help string, kinds ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "intake", Name: name, Help: help}, []string{"kind"})
		for _, kind := range kinds {
			v.WithLabelValues(kind)
		}
		return v
	}
	m := &Metrics{
		created: counter("uploads_created_total",
			"Uploads created (sessions recorded)."),
		completed: counter("uploads_completed_total",
			"Uploads completed and finalized."),
		terminated: counter("uploads_terminated_total",
			"Uploads terminated by their client."),
		bytesReceived: counter("bytes_received_total",
			"Upload bytes written to the store."),

		dedupHits: byKind("dedup_hits_total",
			"Content found already stored: kind=preflight (answered before a transfer), create (upload complete on creation), finish (stored copy dropped).",
			"preflight", "create", "finish"),
		dedupBytesSaved: counter("dedup_bytes_saved_total",
			"Bytes not stored again (finish) or not transferred at all (create)."),
		digestFallbacks: counter("digest_fallbacks_total",
			"Digests computed by reading the stored object back, because no streamed state covered the upload."),
		digestMismatches: counter("digest_mismatches_total",
			"Uploads failed because their bytes did not match the declared sha256."),
		rejected: counter("uploads_rejected_total",
			"Uploads rejected at finalization because their sniffed type is not allowed."),
		reaped: counter("uploads_reaped_total",
			"Incomplete uploads expired by the reaper, their storage released."),
		bytesReleased: counter("reaped_bytes_released_total",
			"Bytes of expired uploads released by the reaper."),
		orphansRemoved: byKind("orphans_removed_total",
			"Storage no session knew, removed by the orphan sweep: kind=multipart (S3 multipart uploads), object (S3 objects), file (file store files), temp (local S3 part files at start).",
			"multipart", "object", "file", "temp"),
	}
	if reg != nil {
		reg.MustRegister(m.created, m.completed, m.terminated, m.bytesReceived,
			m.dedupHits, m.dedupBytesSaved, m.digestFallbacks, m.digestMismatches,
			m.rejected, m.reaped, m.bytesReleased, m.orphansRemoved)
	}
	return m
}
