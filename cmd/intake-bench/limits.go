package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// limitTrials is how often each limit is measured; the best trial is the
// limit (a physical limit is what the machine can do, and a slow trial
// only says that something else, a first page-cache allocation or a noisy
// neighbour, got in the way).
const limitTrials = 5

// Limits are the physical limits measured in the same run, in MiB/s, each
// the best of limitTrials; the Trials fields keep every one.
type Limits struct {
	// Loopback is one Go TCP connection on 127.0.0.1, writer and reader in
	// this process.
	Loopback       float64   `json:"loopback_mib_per_s"`
	LoopbackTrials []float64 `json:"loopback_trials"`
	LoopbackBytes  int64     `json:"loopback_bytes"`
	// DiskBuffered is a sequential write into the work directory until the
	// last write returns (page cache); DiskSynced includes the fsync that
	// follows.
	DiskBuffered       float64   `json:"disk_buffered_mib_per_s"`
	DiskBufferedTrials []float64 `json:"disk_buffered_trials"`
	DiskSynced         float64   `json:"disk_fsynced_mib_per_s"`
	DiskSyncedTrials   []float64 `json:"disk_fsynced_trials"`
	DiskBytes          int64     `json:"disk_bytes"`
	// SHA256 is crypto/sha256 on one goroutine.
	SHA256       float64   `json:"sha256_mib_per_s"`
	SHA256Trials []float64 `json:"sha256_trials"`
	SHA256Bytes  int64     `json:"sha256_bytes"`
}

func measureLimits(ctx context.Context, dir string, sz sizes) (Limits, error) {
	l := Limits{LoopbackBytes: sz.Loopback, DiskBytes: sz.Disk, SHA256Bytes: sz.SHABuf * int64(sz.SHAPasses)}
	for range limitTrials {
		lo, err := loopbackRate(ctx, sz.Loopback)
		if err != nil {
			return l, fmt.Errorf("loopback: %w", err)
		}
		buffered, synced, err := diskRate(ctx, dir, sz.Disk)
		if err != nil {
			return l, fmt.Errorf("disk: %w", err)
		}
		l.LoopbackTrials = append(l.LoopbackTrials, lo)
		l.DiskBufferedTrials = append(l.DiskBufferedTrials, buffered)
		l.DiskSyncedTrials = append(l.DiskSyncedTrials, synced)
		l.SHA256Trials = append(l.SHA256Trials, sha256Rate(sz.SHABuf, sz.SHAPasses))
	}
	l.Loopback = slices.Max(l.LoopbackTrials)
	l.DiskBuffered = slices.Max(l.DiskBufferedTrials)
	l.DiskSynced = slices.Max(l.DiskSyncedTrials)
	l.SHA256 = slices.Max(l.SHA256Trials)
	return l, nil
}

// loopbackRate copies n bytes over one TCP connection on 127.0.0.1 with
// 256 KiB reads and writes, the buffer size the benchmark client uses.
func loopbackRate(ctx context.Context, n int64) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		var total int64
		for {
			m, err := c.Read(buf)
			total += int64(m)
			if err == io.EOF {
				got <- result{n: total}
				return
			}
			if err != nil {
				got <- result{n: total, err: err}
				return
			}
		}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	fillRandom(buf)
	start := time.Now()
	for sent := int64(0); sent < n; {
		m, err := c.Write(buf[:min(int64(len(buf)), n-sent)])
		sent += int64(m)
		if err != nil {
			c.Close()
			return 0, err
		}
		if ctx.Err() != nil {
			c.Close()
			return 0, ctx.Err()
		}
	}
	c.(*net.TCPConn).CloseWrite()
	r := <-got
	elapsed := time.Since(start)
	c.Close()
	if r.err != nil {
		return 0, r.err
	}
	if r.n != n {
		return 0, fmt.Errorf("received %d of %d bytes", r.n, n)
	}
	return mibps(n, elapsed), nil
}

// diskRate writes n bytes of random data sequentially to a new file in dir
// in 8 MiB writes, then fsyncs it; it reports the rate until the last
// write returned and the rate including the fsync. Dirty pages of earlier
// work are flushed first so they are not counted.
func diskRate(ctx context.Context, dir string, n int64) (buffered, synced float64, err error) {
	syscall.Sync()
	name := filepath.Join(dir, "disk-limit.bin")
	f, err := os.Create(name)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(name)
	defer f.Close()
	buf := make([]byte, 8<<20)
	fillRandom(buf)
	start := time.Now()
	for off := int64(0); off < n; {
		m, err := f.Write(buf[:min(int64(len(buf)), n-off)])
		if err != nil {
			return 0, 0, err
		}
		off += int64(m)
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
	}
	wrote := time.Since(start)
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	total := time.Since(start)
	if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return 0, 0, err
	}
	return mibps(n, wrote), mibps(n, total), nil
}

// sha256Rate hashes a buffer of size bytes passes times on this goroutine.
func sha256Rate(size int64, passes int) float64 {
	buf := make([]byte, size)
	fillRandom(buf)
	h := sha256.New()
	start := time.Now()
	for range passes {
		h.Write(buf)
	}
	h.Sum(nil)
	return mibps(size*int64(passes), time.Since(start))
}

func fillRandom(b []byte) {
	p := newPattern(1, int64(len(b)))
	_, _ = p.ReadAt(b, 0)
}

func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }
