package server

import (
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

// wrap makes the request's body interruptible for the request's lifetime.
func (d *drainer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &drainBody{ReadCloser: r.Body, rc: http.NewResponseController(w)}
		d.mu.Lock()
		b.draining = d.draining
		d.bodies[b] = struct{}{}
		d.mu.Unlock()
		defer func() {
			d.mu.Lock()
			delete(d.bodies, b)
			d.mu.Unlock()
		}()
		r.Body = b
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

	mu       sync.Mutex
	draining bool
}

func (b *drainBody) interrupt() {
	b.mu.Lock()
	b.draining = true
	b.mu.Unlock()
	// Wakes a Read blocked on the connection; it then reports the shutdown.
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *drainBody) isDraining() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.draining
}

// Read returns handler.ErrServerShutdown once draining: tusd keeps what it
// read before and answers with that error's status (503).
func (b *drainBody) Read(p []byte) (int, error) {
	if b.isDraining() {
		return 0, handler.ErrServerShutdown
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.isDraining() {
		return n, handler.ErrServerShutdown
	}
	return n, err
}
