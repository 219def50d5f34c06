package main_test

// End-to-end tests of several intake processes on one PostgreSQL catalog and
// one bucket, as on several hosts behind a load balancer: an upload's
// requests land on any instance, and the distributed upload lock (advisory
// locks and release requests over PostgreSQL) keeps them from writing one
// upload at once, takes an upload over from a client that stalls, and lets
// go of a killed instance's uploads at once.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/intake-dev/intake/internal/jsclient"
	"github.com/intake-dev/intake/pkg/client"
	"github.com/intake-dev/intake/pkg/server"
)

// instance is one intake process of a scaled-out deployment.
type instance struct {
	*proc
	name string
	// tempDir is where its S3 parts wait on local disk before they are
	// sent: what it has read of a PATCH body but not yet stored.
	tempDir string
}

// startInstance starts one intake on d with a data directory and S3 temp
// directory of its own, as another host would have; only the database and
// the bucket are shared. When t fails, the instance is stopped and its log
// attached (a running process may still be writing it).
func startInstance(t *testing.T, d *deployment, name string, extra ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "parts")
	p := d.serve(t, dir, append([]string{"--s3-temp-dir", tmp}, extra...)...)
	t.Cleanup(func() {
		if t.Failed() {
			p.kill()
			t.Logf("log of instance %s (%s):\n%s", name, p.base, p.log)
		}
	})
	return &instance{proc: p, name: name, tempDir: tmp}
}

// startPair starts instances A and B on a fresh PostgreSQL schema and a
// fresh versitygw bucket, both with the flags extra.
func startPair(t *testing.T, extra ...string) (d *deployment, a, b *instance) {
	t.Helper()
	d = newDeployment(t, "s3", true)
	return d, startInstance(t, d, "A", extra...), startInstance(t, d, "B", extra...)
}

func (in *instance) client() *client.Client {
	return &client.Client{Endpoint: in.base + "/files/"}
}

// url is upload id's URL on this instance.
func (in *instance) url(id string) string { return in.base + "/files/" + id }

// session is upload id as GET /v1/uploads/{id} on this instance shows it.
func (in *instance) session(t *testing.T, id string) server.UploadView {
	t.Helper()
	status, body, err := get(in.base + "/v1/uploads/" + id)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /v1/uploads/%s on %s: %d %s, %v; want 200", id, in.name, status, body, err)
	}
	var v server.UploadView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /v1/uploads/%s on %s: %v: %s", id, in.name, err, body)
	}
	return v
}

// waitUntil polls cond until it holds, failing t after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// locksHeld is the instance's intake_locks_held; t fails (and goes on) when
// it is not exported.
func (in *instance) locksHeld(t *testing.T) float64 {
	t.Helper()
	v, ok := in.metric(t, "intake_locks_held")
	if !ok {
		t.Errorf("/metrics of %s has no intake_locks_held", in.name)
	}
	return v
}

// checkNoLocksHeld fails t unless every instance soon holds no upload lock:
// one never released would keep its upload from every other instance. The
// wait covers the moment between a response and the lock's release.
func checkNoLocksHeld(t *testing.T, instances ...*instance) {
	t.Helper()
	for _, in := range instances {
		deadline := time.Now().Add(5 * time.Second)
		for in.locksHeld(t) != 0 {
			if time.Now().After(deadline) {
				t.Errorf("%s still holds %v upload lock(s) 5s after its last request; want 0", in.name, in.locksHeld(t))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// partsInBucket is how many multipart parts of upload id the bucket holds.
// tusd's S3 upload id is <object id>+<multipart id>.
func partsInBucket(t *testing.T, d *deployment, id string) int {
	t.Helper()
	objectID, multipartID, _ := strings.Cut(id, "+")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := minio.Core{Client: d.s3.Client()}.ListObjectParts(ctx, d.bucket, "uploads/"+objectID, multipartID, 0, 1000)
	if err != nil {
		t.Fatalf("listing the parts of %s: %v", id, err)
	}
	return len(res.ObjectParts)
}

// holdsFileOf reports whether dir holds a file of exactly size bytes.
func holdsFileOf(t *testing.T, dir string, size int64) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// A part file may be removed between listing and stat.
		if st, err := e.Info(); err == nil && st.Mode().IsRegular() && st.Size() == size {
			return true
		}
	}
	return false
}

// checkComplete fails t unless upload id is complete with data's digest
// in the catalog (as A shows it) and downloads byte-exact from every
// instance.
func checkComplete(t *testing.T, id string, data []byte, instances ...*instance) {
	t.Helper()
	v := instances[0].session(t, id)
	if v.State != "complete" || v.Offset != int64(len(data)) || v.SHA256 != hexSum(data) {
		t.Errorf("session %s: state %s, offset %d, sha256 %q; want complete, %d, %s", id, v.State, v.Offset, v.SHA256, len(data), hexSum(data))
	}
	for _, in := range instances {
		if got := download(t, in.url(id)); !bytes.Equal(got, data) {
			t.Errorf("download of %s from %s: %d bytes that differ from the %d uploaded", id, in.name, len(got), len(data))
		}
	}
}

// patchResult is how a PATCH sent in the background ended.
type patchResult struct {
	offset int64
	err    error
}

// TestScaleOutAlternatingPatches: an upload created on A takes its PATCHes
// alternately on B and A, in sizes around S3's minimum part (so that both
// instances continue each other's multipart upload and its parked .part
// object). After every PATCH the other instance's HEAD reports the new
// offset, and the bytes download intact from both.
func TestScaleOutAlternatingPatches(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	t.Parallel()
	_, a, b := startPair(t)
	ctx := context.Background()

	const size = 40 << 20
	data := random(t, size)
	url, _, err := a.client().Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": "alternating.bin"}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := path.Base(url)

	chunks := []int64{5<<20 + 1, 3<<20 + 17, 7<<20 + 5, 1, 5 << 20, 2<<20 + 333, 6<<20 + 4099}
	var off int64
	for i := 0; off < size; i++ {
		n := size - off
		if i < len(chunks) {
			n = chunks[i]
		}
		to, other := b, a
		if i%2 == 1 {
			to, other = a, b
		}
		got, err := to.client().Patch(ctx, to.url(id), off, bytes.NewReader(data[off:off+n]), n, -1)
		if err != nil || got != off+n {
			t.Fatalf("PATCH %d (%d bytes at %d) to %s: offset %d, %v; want %d", i+1, n, off, to.name, got, err, off+n)
		}
		off = got
		info, err := other.client().Head(ctx, other.url(id))
		if err != nil || info.Offset != off {
			t.Fatalf("HEAD on %s after PATCH %d to %s: offset %d, %v; want %d", other.name, i+1, to.name, info.Offset, err, off)
		}
	}

	checkComplete(t, id, data, a, b)
	checkNoLocksHeld(t, a, b)
	a.terminate()
	b.terminate()
}

// TestScaleOutHungPatchTakeover: a client's PATCH to A sends 10 MiB and a
// bit, then stalls with the connection open. A HEAD on B makes A give the
// upload up (a release request): it answers within a second, with every
// byte A read stored; A agrees; the stalled PATCH ends with 400
// upload_interrupted (or a closed connection) instead of holding the upload
// until the network timeout; and the upload completes on B.
//
// Not parallel: the one-second bound is a correctness check of the release
// path (without it, B would wait for --lock-timeout), and it should not
// depend on how busy the machine is with other tests.
func TestScaleOutHungPatchTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	const partSize = 5 << 20
	d, a, b := startPair(t, "--lock-timeout", "10s", "--s3-part-size", "5MiB")
	ctx := context.Background()

	const size = 24<<20 + 11
	data := random(t, size)
	url, _, err := a.client().Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": "hung.bin"}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := path.Base(url)

	// Two whole parts and a tail that has to wait on A's disk: once both
	// parts are in the bucket and the tail in A's temp directory, A has
	// read every byte sent, and nothing more will come.
	const tail = 300<<10 + 7
	const sent = 2*partSize + tail
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(io.ErrClosedPipe) })
	stale := make(chan patchResult, 1)
	go func() {
		off, err := a.client().Patch(ctx, a.url(id), 0, pr, size, -1)
		stale <- patchResult{off, err}
	}()
	wrote := make(chan error, 1)
	go func() {
		_, err := pw.Write(data[:sent])
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("sending the first %d bytes: %v", sent, err)
		}
	case r := <-stale:
		t.Fatalf("the PATCH to A ended (offset %d, %v) before its first %d bytes were sent", r.offset, r.err, sent)
	case <-time.After(15 * time.Second):
		t.Fatalf("A did not read the first %d bytes of the PATCH within 15s", sent)
	}
	waitUntil(t, 10*time.Second, "A stored two parts and holds the tail", func() bool {
		return partsInBucket(t, d, id) == 2 && holdsFileOf(t, a.tempDir, tail)
	})

	if n := a.locksHeld(t); n != 1 {
		t.Errorf("A holds %v upload lock(s) while the PATCH stalls; want 1", n)
	}

	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	begin := time.Now()
	info, err := b.client().Head(hctx, b.url(id))
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("HEAD on B while A's PATCH stalls: %v after %s; want 200", err, took)
	}
	if took >= time.Second {
		t.Errorf("HEAD on B while A's PATCH stalls answered after %s; want under 1s (A releasing the upload on request)", took)
	}
	if info.Offset != sent {
		t.Errorf("HEAD on B while A's PATCH stalls: offset %d; want %d, every byte A read (%d in parts, %d waiting on A's disk)", info.Offset, sent, 2*partSize, tail)
	}
	t.Logf("HEAD on B answered in %s with offset %d", took, info.Offset)

	select {
	case r := <-stale:
		var se *client.StatusError
		switch {
		case r.err == nil:
			t.Errorf("the stalled PATCH to A succeeded at offset %d; want it interrupted", r.offset)
		case errors.As(r.err, &se):
			if se.Status != http.StatusBadRequest || se.Code != "upload_interrupted" {
				t.Errorf("the stalled PATCH to A: %v; want 400 upload_interrupted", r.err)
			}
		default:
			t.Logf("the stalled PATCH to A ended without a response: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the stalled PATCH to A has not ended 10s after B took the upload over")
	}
	pw.CloseWithError(io.ErrClosedPipe)

	// B has the upload now; A sees the same bytes.
	infoA, err := a.client().Head(hctx, a.url(id))
	if err != nil || infoA.Offset != info.Offset {
		t.Errorf("HEAD on A after the takeover: offset %d, %v; want B's %d", infoA.Offset, err, info.Offset)
	}
	off := info.Offset
	for _, end := range []int64{off + 7<<20, size} {
		got, err := b.client().Patch(ctx, b.url(id), off, bytes.NewReader(data[off:end]), end-off, -1)
		if err != nil || got != end {
			t.Fatalf("PATCH of %d bytes at %d to B: offset %d, %v; want %d", end-off, off, got, err, end)
		}
		off = got
	}
	checkComplete(t, id, data, a, b)

	if v, ok := a.metric(t, `intake_lock_release_requests_total{direction="received"}`); v < 1 {
		t.Errorf(`A's intake_lock_release_requests_total{direction="received"} = %v (exported: %v); want at least 1`, v, ok)
	}
	if v, ok := b.metric(t, `intake_lock_release_requests_total{direction="sent"}`); v < 1 {
		t.Errorf(`B's intake_lock_release_requests_total{direction="sent"} = %v (exported: %v); want at least 1`, v, ok)
	}
	checkNoLocksHeld(t, a, b)
	a.terminate()
	b.terminate()
}

// TestScaleOutKill9Takeover: A is killed with SIGKILL while a 64 MiB PATCH
// streams into it. Its locks go with its database connection, so a HEAD on
// B right after answers at once (not after --lock-timeout) with what the
// bucket holds, and the upload completes on B byte-exact.
//
// Not parallel, for the same reason as TestScaleOutHungPatchTakeover.
func TestScaleOutKill9Takeover(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	const partSize = 5 << 20
	d, a, b := startPair(t, "--lock-timeout", "10s", "--s3-part-size", "5MiB")
	ctx := context.Background()

	const size = 64 << 20
	data := random(t, size)
	url, _, err := a.client().Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": "killed.bin"}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := path.Base(url)

	// The body comes at about 25 MiB/s, so A is mid-part when it dies.
	// offered counts a piece before it is written: an upper bound of what
	// A can have read.
	pr, pw := io.Pipe()
	var offered atomic.Int64
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		const piece = 256 << 10
		for off := 0; off < size; off += piece {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			offered.Add(piece)
			if _, err := pw.Write(data[off : off+piece]); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		pw.CloseWithError(io.ErrClosedPipe)
		writer.Wait()
	})
	patched := make(chan patchResult, 1)
	go func() {
		off, err := a.client().Patch(ctx, a.url(id), 0, pr, size, -1)
		patched <- patchResult{off, err}
	}()

	waitUntil(t, 15*time.Second, "A stored two parts of the PATCH", func() bool {
		return partsInBucket(t, d, id) >= 2
	})
	// The premise: A dies holding the upload's lock.
	if n := a.locksHeld(t); n != 1 {
		t.Errorf("A holds %v upload lock(s) while the PATCH streams; want 1", n)
	}
	a.kill()
	sentBefore := offered.Load()

	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	begin := time.Now()
	info, err := b.client().Head(hctx, b.url(id))
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("HEAD on B right after A was killed: %v after %s; want 200", err, took)
	}
	if took >= 2*time.Second {
		t.Errorf("HEAD on B right after A was killed answered after %s; want under 2s (the lock went with A's connection; --lock-timeout is 10s)", took)
	}
	if info.Offset < 2*partSize || info.Offset > sentBefore {
		t.Errorf("HEAD on B after the kill: offset %d; want at least the %d bytes of the parts in the bucket and at most the %d sent", info.Offset, 2*partSize, sentBefore)
	}
	t.Logf("HEAD on B answered in %s with offset %d (%d bytes sent to A)", took, info.Offset, sentBefore)
	if v := b.session(t, id); v.Offset != info.Offset || v.State != "receiving" {
		t.Errorf("session after HEAD on B: %s at %d; want receiving at %d", v.State, v.Offset, info.Offset)
	}

	select {
	case r := <-patched:
		if r.err == nil {
			t.Errorf("the PATCH to the killed A succeeded at offset %d", r.offset)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the PATCH to the killed A has not ended after 10s")
	}

	if err := b.client().Resume(ctx, b.url(id), bytes.NewReader(data), size, 8<<20, 0); err != nil {
		t.Fatalf("resuming on B: %v", err)
	}
	checkComplete(t, id, data, b)
	checkNoLocksHeld(t, b)
	b.terminate()
}

// TestScaleOutConcurrentUploads: 32 uploads at once, each created on a
// random instance and sent in a few PATCHes to random instances. Every one
// completes with its digest recorded, as the API and `intake uploads ls`
// show, and downloads byte-exact from both instances.
func TestScaleOutConcurrentUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("process end-to-end test")
	}
	t.Parallel()
	d, a, b := startPair(t)
	instances := []*instance{a, b}
	ctx := context.Background()

	const uploads = 32
	contents := make(map[string][]byte, uploads)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := 2<<20 + rand.Int64N(4<<20+1)
			data := random(t, int(size))
			via := instances[rand.IntN(2)]
			url, _, err := via.client().Create(ctx, client.Upload{Size: size, Metadata: map[string]string{"filename": fmt.Sprintf("u%d.bin", i)}}, nil, 0)
			if err != nil {
				t.Errorf("upload %d: creating on %s: %v", i, via.name, err)
				return
			}
			id := path.Base(url)
			// Two to five PATCHes, cut at random.
			cuts := []int64{0, size}
			for range 1 + rand.IntN(4) {
				cuts = append(cuts, 1+rand.Int64N(size-1))
			}
			slices.Sort(cuts)
			for j := 0; j+1 < len(cuts); j++ {
				from, to := cuts[j], cuts[j+1]
				if from == to {
					continue
				}
				via := instances[rand.IntN(2)]
				got, err := via.client().Patch(ctx, via.url(id), from, bytes.NewReader(data[from:to]), to-from, -1)
				if err != nil || got != to {
					t.Errorf("upload %d (%s): PATCH of %d bytes at %d to %s: offset %d, %v; want %d", i, id, to-from, from, via.name, got, err, to)
					return
				}
			}
			mu.Lock()
			contents[id] = data
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	for id, data := range contents {
		checkComplete(t, id, data, a, b)
	}

	out, status := d.run(t, "uploads", "ls", "--json", "--limit", "1000")
	var list []server.UploadView
	if err := json.Unmarshal([]byte(out), &list); status != 0 || err != nil {
		t.Fatalf("uploads ls --json: exit %d, %v:\n%s", status, err, out)
	}
	if len(list) != uploads {
		t.Errorf("uploads ls lists %d uploads; want %d", len(list), uploads)
	}
	for _, v := range list {
		data, ok := contents[v.ID]
		if !ok {
			t.Errorf("uploads ls lists %s, which the test did not upload", v.ID)
			continue
		}
		if v.State != "complete" || v.Offset != int64(len(data)) || v.SHA256 != hexSum(data) {
			t.Errorf("uploads ls: %s %s at %d with sha256 %q; want complete at %d with %s", v.ID, v.State, v.Offset, v.SHA256, len(data), hexSum(data))
		}
	}
	checkNoLocksHeld(t, a, b)
	a.terminate()
	b.terminate()
}

// roundRobin is a load balancer without affinity: a reverse proxy that
// sends each request to the next instance in turn.
type roundRobin struct {
	base    string // the proxy's URL
	targets []*url.URL
	next    atomic.Uint64

	mu sync.Mutex
	// patches maps an upload id to the indexes of the instances its
	// PATCHes went to.
	patches map[string][]int
}

// newRoundRobin starts a proxy in front of the instances.
func newRoundRobin(t *testing.T, instances ...*instance) *roundRobin {
	t.Helper()
	rr := &roundRobin{patches: map[string][]int{}}
	for _, in := range instances {
		u, err := url.Parse(in.base)
		if err != nil {
			t.Fatal(err)
		}
		rr.targets = append(rr.targets, u)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := int((rr.next.Add(1) - 1) % uint64(len(rr.targets)))
			pr.SetURL(rr.targets[i])
			// SetURL sends the target's Host. The instances build Location
			// from the request's Host, and the client must keep talking to
			// the proxy, so the client's Host goes through unchanged (as a
			// load balancer keeps it) and --behind-proxy is not needed.
			pr.Out.Host = pr.In.Host
			if pr.In.Method == http.MethodPatch {
				rr.mu.Lock()
				id := path.Base(pr.In.URL.Path)
				rr.patches[id] = append(rr.patches[id], i)
				rr.mu.Unlock()
			}
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	rr.base = srv.URL
	return rr
}

// patchedOn returns the instances upload id's PATCHes went to, in order.
func (rr *roundRobin) patchedOn(id string) []int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]int(nil), rr.patches[id]...)
}

// TestScaleOutJSClient: the real tus-js-client uploads through a
// round-robin proxy in front of A and B, in 5 MiB chunks, so that
// consecutive requests of one upload alternate between the instances. The
// uploads run one after another so that each one's PATCHes are sure to
// land on both. Each completes without a retry and downloads byte-exact
// through the proxy and from both instances.
func TestScaleOutJSClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Node.js, and npm ci on first use")
	}
	t.Parallel()
	// Skip (or fail in CI) before any server starts when there is no node.
	jsclient.Install(t)
	_, a, b := startPair(t)
	rr := newRoundRobin(t, a, b)
	endpoint := rr.base + "/files/"

	for i := range 3 {
		data := random(t, 12<<20)
		name := fmt.Sprintf("js-%d.bin", i)
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res := jsclient.Upload(t, jsclient.Options{
			Endpoint:  endpoint,
			File:      file,
			ChunkSize: 5 << 20,
			Metadata:  map[string]string{"filename": name, "filetype": "application/octet-stream"},
		})
		if len(res.Retries) != 0 {
			t.Errorf("upload %d: tus-js-client retried after %q; want no 5xx, 409, 423 or dropped connection", i, res.Retries)
		}
		if !strings.HasPrefix(res.URL, endpoint) {
			t.Fatalf("upload %d: URL %q; want one under the proxy's %s", i, res.URL, endpoint)
		}
		id := path.Base(res.URL)
		if on := rr.patchedOn(id); len(on) != 3 || on[0] == on[1] || on[1] == on[2] {
			t.Errorf("upload %d: its PATCHes went to instances %v; want 3 alternating between A (0) and B (1)", i, on)
		}
		if got := download(t, res.URL); !bytes.Equal(got, data) {
			t.Errorf("upload %d: download through the proxy differs", i)
		}
		checkComplete(t, id, data, a, b)
	}
	checkNoLocksHeld(t, a, b)
	a.terminate()
	b.terminate()
}
