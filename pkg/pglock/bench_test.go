package pglock_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/pglock"
)

// BenchmarkAcquire measures how long taking an upload's lock takes, and
// reports the p50 and p99 of the acquire latency (µs):
//   - free: nobody holds the upload (every PATCH and HEAD pays this);
//   - free-parallel16: the same from 16 goroutines at once, all sharing
//     the instance's one lock session;
//   - handover: another instance holds the upload and yields when asked,
//     as a stale PATCH does: the release request goes out by NOTIFY and
//     the holder's unlock notification wakes the waiter.
func BenchmarkAcquire(b *testing.B) {
	cfg, _ := config(b)
	a := newLocker(b, cfg, pglock.Options{})
	other := newLocker(b, cfg, pglock.Options{})
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = randomID(b)
		}
		return out
	}

	b.Run("free", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for _, id := range ids(b.N) {
			start := time.Now()
			h := mustLock(b, a, id, nil)
			lat = append(lat, time.Since(start))
			_ = h.lock.Unlock()
		}
		report(b, lat)
	})

	b.Run("free-parallel16", func(b *testing.B) {
		var mu sync.Mutex
		lat := make([]time.Duration, 0, b.N)
		b.SetParallelism(8) // 2 cores × 8 = 16 goroutines
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				id := randomID(b)
				start := time.Now()
				h := mustLock(b, a, id, nil)
				mine = append(mine, time.Since(start))
				_ = h.lock.Unlock()
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		report(b, lat)
	})

	b.Run("handover", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for _, id := range ids(b.N) {
			mustLock(b, other, id, func(h *held) { go h.lock.Unlock() })
			start := time.Now()
			h := mustLock(b, a, id, nil)
			lat = append(lat, time.Since(start))
			_ = h.lock.Unlock()
		}
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
