package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// drainer ends the request bodies still streaming when the server shuts
// down, so that each in-flight PATCH stops reading, stores and records what
// has arrived, and answers 503 — while the handler keeps running to do so.
//
// tusd's own mechanism (cancelling every request context with
// handler.ErrServerShutdown) races in tusd v2.10.1 with the handler goroutine
// on the request's body field; interrupting at the body instead needs no
// context cancellation at all.
type drainer struct {
	mu       sync.Mutex
	draining bool
	bodies   map[*drainBody]struct{}
}

func newDrainer() *drainer {
	return &drainer{bodies: make(map[*drainBody]struct{})}
}

// wrap makes the request's body interruptible for the request's lifetime,
// and tells the upload locker (through the context) how to make this
// request yield.
func (d *drainer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{method: r.Method}
		// A copy: net/http must keep seeing its own body on the original
		// request, to answer while the client is still sending.
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, req))
		if r.Body != nil && r.Body != http.NoBody {
			b := &drainBody{ReadCloser: r.Body, rc: http.NewResponseController(w)}
			d.mu.Lock()
			if d.draining {
				b.err = handler.ErrServerShutdown
			}
			d.bodies[b] = struct{}{}
			d.mu.Unlock()
			defer func() {
				d.mu.Lock()
				delete(d.bodies, b)
				d.mu.Unlock()
			}()
			r.Body, req.body = b, b
		}
		next.ServeHTTP(w, r)
	})
}

// drain interrupts every body being read now and every body read from now on.
func (d *drainer) drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining = true
	for b := range d.bodies {
		b.interrupt()
	}
}

type drainBody struct {
	io.ReadCloser
	rc *http.ResponseController

	mu  sync.Mutex
	err error // why the body was interrupted; nil while it is not
}

// interrupt ends the body for shutdown.
func (b *drainBody) interrupt() { b.interruptWith(handler.ErrServerShutdown) }

// interruptWith ends the body: reads from now on fail with err. The first
// error stays.
func (b *drainBody) interruptWith(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	// Wakes a Read blocked on the connection; it then reports err.
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *drainBody) interrupted() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Read returns the interruption's error once interrupted: tusd keeps what
// it read before and answers with that error's status (503 on shutdown,
// 400 for a request that had to yield its upload).
func (b *drainBody) Read(p []byte) (int, error) {
	if err := b.interrupted(); err != nil {
		return 0, err
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if ierr := b.interrupted(); ierr != nil {
			return n, ierr
		}
	}
	return n, err
}

// requestKey is the context key of the request being served.
type requestKey struct{}

type request struct {
	method string
	body   *drainBody // nil without a body
}

// releaseFunc is how the request whose context is ctx yields its upload
// lock when another request needs it. A request streaming a body has the
// body ended: tusd stores what arrived, records it and answers 400
// ERR_UPLOAD_INTERRUPTED, the same as its own mechanism (cancelling the
// request context), which races with the handler writing the context's
// body field in tusd v2.10.1. A PATCH or POST without a body has nothing
// to interrupt and finishes promptly. Other requests (HEAD, GET, DELETE)
// never set that field, so tusd's own tusdRelease is safe for them.
func releaseFunc(ctx context.Context, tusdRelease func()) func() {
	r, ok := ctx.Value(requestKey{}).(*request)
	switch {
	case !ok:
		return tusdRelease // a handler not built by this package
	case r.body != nil:
		return func() { r.body.interruptWith(handler.ErrUploadInterrupted) }
	case r.method == http.MethodPatch || r.method == http.MethodPost:
		return func() {}
	default:
		return tusdRelease
	}
}
