package server

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exposes the PostgreSQL catalog pool's statistics, read at
// scrape time. A pool that runs out shows as acquires that waited
// (intake_db_pool_empty_acquires_total) and the time they waited.
type poolCollector struct {
	pool *pgxpool.Pool

	max, total, idle, acquired, constructing *prometheus.Desc
	acquires, emptyAcquires, canceled        *prometheus.Desc
	acquireSeconds, emptyWaitSeconds         *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("intake_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:             pool,
		max:              d("max_connections", "The catalog pool's size (--db-max-conns)."),
		total:            d("connections", "Connections the catalog pool has open."),
		idle:             d("idle_connections", "Open catalog pool connections not in use."),
		acquired:         d("acquired_connections", "Catalog pool connections in use."),
		constructing:     d("constructing_connections", "Catalog pool connections being opened."),
		acquires:         d("acquires_total", "Connections taken from the catalog pool."),
		emptyAcquires:    d("empty_acquires_total", "Acquires that had to wait: no idle connection in the pool."),
		canceled:         d("canceled_acquires_total", "Acquires given up before a connection was free."),
		acquireSeconds:   d("acquire_seconds_total", "Time spent acquiring catalog pool connections."),
		emptyWaitSeconds: d("empty_acquire_wait_seconds_total", "Time acquires waited for a connection to free up."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v int32) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.max, s.MaxConns())
	gauge(c.total, s.TotalConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.constructing, s.ConstructingConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.canceled, float64(s.CanceledAcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
}
