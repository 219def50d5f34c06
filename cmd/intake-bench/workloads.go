package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intake-dev/intake/pkg/client"
)

// workloadTitles describe the workloads in the report.
var workloadTitles = map[string]string{
	"W1": "one upload in a single PATCH",
	"W2": "one upload in 8 MiB PATCHes",
	"W3": "concurrent uploads, one PATCH each",
	"W4": "creates (POST, Upload-Length 1)",
}

// target is one server under test as the workloads see it.
type target struct {
	name   string
	client *client.Client
	http   *http.Client
}

// Run is one workload run against one server: the raw numbers of the JSON.
type Run struct {
	Backend  string `json:"backend"`
	Round    int    `json:"round"`
	Workload string `json:"workload"`
	Server   string `json:"server"`
	// Bytes moved by the timed part (W1–W3) and Seconds it took.
	Bytes   int64   `json:"bytes,omitempty"`
	Seconds float64 `json:"seconds"`
	MiBps   float64 `json:"mib_per_s,omitempty"`
	// Creates, their rate and latency percentiles (W4).
	Creates       int     `json:"creates,omitempty"`
	CreatesPerSec float64 `json:"creates_per_s,omitempty"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
	// PeakRSS is the server's VmHWM over the run (W1, W3: W5).
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
	// Verified is how many uploads were read back and compared byte for
	// byte after the timed part.
	Verified int `json:"verified"`
}

// runWorkload runs workload id once against t. A failed verification is
// an error: a broken path is never measured.
func runWorkload(ctx context.Context, id string, t target, sz sizes, seed uint64) (Run, error) {
	switch id {
	case "W1":
		return runOne(ctx, t, newPattern(seed, sz.W1), 0)
	case "W2":
		return runOne(ctx, t, newPattern(seed, sz.W2), sz.W2Chunk)
	case "W3":
		return runConcurrent(ctx, t, sz.W3Uploads, sz.W3Size, seed)
	case "W4":
		return runCreates(ctx, t, sz.W4Creates, sz.W4Par, seed)
	}
	return Run{}, fmt.Errorf("unknown workload %s", id)
}

// runOne times one upload of p in PATCHes of chunk bytes (0: one PATCH),
// from the POST to the last PATCH's answer.
func runOne(ctx context.Context, t target, p *pattern, chunk int64) (Run, error) {
	start := time.Now()
	u, err := upload(ctx, t, p, chunk)
	elapsed := time.Since(start)
	if err != nil {
		return Run{}, err
	}
	if err := verify(ctx, t, u, p); err != nil {
		return Run{}, err
	}
	if err := remove(ctx, t, []string{u}); err != nil {
		return Run{}, err
	}
	return throughput(p.size, elapsed, 1), nil
}

// runConcurrent times n uploads of size bytes, all at once, each one POST
// and one PATCH; the rate is all bytes over the wall time. The first and
// the last upload are read back.
func runConcurrent(ctx context.Context, t target, n int, size int64, seed uint64) (Run, error) {
	patterns := make([]*pattern, n)
	for i := range patterns {
		patterns[i] = newPattern(seed+uint64(i), size)
	}
	urls := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { urls[i], errs[i] = upload(ctx, t, patterns[i], 0) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return Run{}, err
	}
	for _, i := range []int{0, n - 1} {
		if err := verify(ctx, t, urls[i], patterns[i]); err != nil {
			return Run{}, fmt.Errorf("upload %d of %d: %w", i+1, n, err)
		}
	}
	if err := remove(ctx, t, urls); err != nil {
		return Run{}, err
	}
	return throughput(int64(n)*size, elapsed, min(n, 2)), nil
}

// runCreates times n creates of one-byte uploads by par workers. One of
// them then gets its byte and is read back, so the uploads created are
// real ones.
func runCreates(ctx context.Context, t target, n, par int, seed uint64) (Run, error) {
	urls := make([]string, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range par {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				u, _, err := t.client.Create(ctx, client.Upload{Size: 1}, nil, 0)
				lat[i] = time.Since(t0)
				if err == nil {
					err = loopbackURL(u)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("create %d: %w", i+1, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				urls[i] = u
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Run{}, firstErr
	}
	p := newPattern(seed, 1)
	if off, err := t.client.Patch(ctx, urls[0], 0, p.reader(), 1, -1); err != nil || off != 1 {
		return Run{}, fmt.Errorf("PATCH of a created upload: offset %d, %v", off, err)
	}
	if err := verify(ctx, t, urls[0], p); err != nil {
		return Run{}, err
	}
	if err := remove(ctx, t, urls); err != nil {
		return Run{}, err
	}
	return Run{
		Seconds:       elapsed.Seconds(),
		Creates:       n,
		CreatesPerSec: float64(n) / elapsed.Seconds(),
		P50Ms:         ms(percentile(lat, 50)),
		P99Ms:         ms(percentile(lat, 99)),
		Verified:      1,
	}, nil
}

// upload creates an upload of p and sends it in PATCHes of chunk bytes
// (0: one), checking every offset the server answers.
func upload(ctx context.Context, t target, p *pattern, chunk int64) (string, error) {
	u, _, err := t.client.Create(ctx, client.Upload{Size: p.size}, nil, 0)
	if err != nil {
		return "", err
	}
	if err := loopbackURL(u); err != nil {
		return "", err
	}
	if chunk <= 0 {
		chunk = p.size
	}
	for off := int64(0); off < p.size; {
		n := min(chunk, p.size-off)
		got, err := t.client.Patch(ctx, u, off, io.NewSectionReader(p, off, n), n, -1)
		if err != nil {
			return "", fmt.Errorf("PATCH at %d: %w", off, err)
		}
		if got != off+n {
			return "", fmt.Errorf("PATCH at %d of %d bytes: server answered offset %d", off, n, got)
		}
		off = got
	}
	return u, nil
}

// verify downloads u and compares it with p as it streams in.
func verify(ctx context.Context, t target, u string, p *pattern) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, b)
	}
	if err := p.verify(resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// remove terminates the uploads (DELETE), 16 at a time, so that disk use
// stays bounded between runs.
func remove(ctx context.Context, t target, urls []string) error {
	var next atomic.Int64
	errs := make([]error, min(16, len(urls)))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(urls) {
					return
				}
				if err := t.client.Delete(ctx, urls[i]); err != nil {
					errs[w] = fmt.Errorf("DELETE %s: %w", urls[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func throughput(bytes int64, elapsed time.Duration, verified int) Run {
	return Run{
		Bytes:    bytes,
		Seconds:  elapsed.Seconds(),
		MiBps:    float64(bytes) / (1 << 20) / elapsed.Seconds(),
		Verified: verified,
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runSeed derives the seed of one run's uploads from what identifies the
// run, so that no two runs upload the same bytes.
func runSeed(backend string, round int, workload, server string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%s/%s", backend, round, workload, server)
	return h.Sum64()
}

// newHTTPClient is the one client of every workload and server: keep-alive
// connections enough for W3's 32 uploads (the default of 2 idle
// connections per host would make most of them dial anew), large buffers
// so the client is not what limits, and a dialer that refuses anything
// but loopback.
func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, // never a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("refusing to connect to %s: the harness talks to loopback only", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}}
}

// loopbackURL checks that an upload URL a server answered points back at
// loopback.
func loopbackURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("bad upload URL %q: %w", u, err)
	}
	if ip := net.ParseIP(parsed.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("upload URL %q is not on loopback", u)
	}
	return nil
}
