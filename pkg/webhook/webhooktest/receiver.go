// Package webhooktest is a webhook receiver for tests: a real HTTP server
// on loopback that verifies every delivery with webhook.Verify,
// deduplicates on Webhook-Id as receivers must, and records what it saw —
// including two deliveries of one event in flight at once, which must
// never happen.
//
// This package is for tests only and must never be imported by non-test
// code.
package webhooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/intake-dev/intake/pkg/webhook"
)

// Delivery is one request the receiver handled.
type Delivery struct {
	ID     string // Webhook-Id
	Body   webhook.Body
	Raw    []byte
	Header http.Header
	Status int // what the receiver answered; 0 when the sender gave up first
}

// Receiver is a webhook endpoint. Its zero value is not usable: call New.
type Receiver struct {
	// URL is where it listens, the same across Down and Up.
	URL string

	t      testing.TB
	secret string
	addr   string

	mu        sync.Mutex
	srv       *http.Server
	respond   func(n int, id string) int
	delay     func(n int, id string) time.Duration
	requests  int
	all       []Delivery
	processed []Delivery
	seen      map[string]bool
	raw       map[string][]byte
	inflight  map[string]int
	problems  []string
}

// New starts a receiver that answers 204 to every valid delivery. It stops
// when t ends, reporting any problem it recorded as a test error.
func New(t testing.TB, secret string) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{
		t: t, secret: secret, addr: ln.Addr().String(),
		seen: map[string]bool{}, raw: map[string][]byte{}, inflight: map[string]int{},
	}
	r.URL = "http://" + r.addr + "/hook"
	r.serve(ln)
	t.Cleanup(func() {
		r.Down()
		for _, p := range r.Problems() {
			t.Errorf("webhook receiver: %s", p)
		}
	})
	return r
}

func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Down closes the listener and every connection: the receiver is gone.
func (r *Receiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same address.
func (r *Receiver) Up() {
	r.t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; a connection being torn down may
	// hold it for a little while.
	for range 100 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listening again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

// Respond sets the status of the n-th request (from 0, every request
// counted, valid or not) for event id; a 2xx processes the event.
func (r *Receiver) Respond(f func(n int, id string) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

// Delay makes the n-th request take d before it is answered.
func (r *Receiver) Delay(f func(n int, id string) time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = f
}

// FailFirst answers status to the first n requests, and 204 after.
func (r *Receiver) FailFirst(n, status int) {
	r.Respond(func(i int, _ string) int {
		if i < n {
			return status
		}
		return http.StatusNoContent
	})
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	var problem string
	var body webhook.Body
	switch {
	case req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json":
		problem = fmt.Sprintf("%s with Content-Type %q; want a POST of application/json", req.Method, req.Header.Get("Content-Type"))
	default:
		if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), string(raw), req.Header.Get(webhook.HeaderSignature), time.Now(), time.Minute); err != nil {
			problem = fmt.Sprintf("event %s: signature does not verify: %v", id, err)
		} else if err := json.Unmarshal(raw, &body); err != nil {
			problem = fmt.Sprintf("event %s: body is not JSON: %v", id, err)
		} else if body.ID != id || id == "" {
			problem = fmt.Sprintf("Webhook-Id %q but body id %q", id, body.ID)
		}
	}

	r.mu.Lock()
	n := r.requests
	r.requests++
	if problem == "" {
		if prev, ok := r.raw[id]; ok && !bytes.Equal(prev, raw) {
			problem = fmt.Sprintf("event %s: body differs between deliveries:\n%s\n%s", id, prev, raw)
		}
		r.raw[id] = raw
	}
	status := http.StatusNoContent
	if problem != "" {
		r.problems = append(r.problems, problem)
		status = http.StatusBadRequest
	} else if r.respond != nil {
		status = r.respond(n, id)
	}
	var delay time.Duration
	if r.delay != nil {
		delay = r.delay(n, id)
	}
	r.inflight[id]++
	if r.inflight[id] > 1 {
		r.problems = append(r.problems, fmt.Sprintf("event %s: %d deliveries in flight at once", id, r.inflight[id]))
	}
	r.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			// The sender gave up: it will never see an answer, so the
			// event is not processed.
			t.Stop()
			status = 0
		}
	}

	r.mu.Lock()
	r.inflight[id]--
	d := Delivery{ID: id, Body: body, Raw: raw, Header: req.Header.Clone(), Status: status}
	r.all = append(r.all, d)
	if status >= 200 && status < 300 && !r.seen[id] {
		r.seen[id] = true
		r.processed = append(r.processed, d)
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// Processed returns the events processed, each once, in the order they
// were first answered with a 2xx.
func (r *Receiver) Processed() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.processed...)
}

// All returns every request handled, in order.
func (r *Receiver) All() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.all...)
}

// Requests counts the requests received so far.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Problems lists what was wrong with deliveries so far.
func (r *Receiver) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}

// WaitProcessed waits until n events have been processed, failing t after
// timeout.
func (r *Receiver) WaitProcessed(ctx context.Context, n int, timeout time.Duration) []Delivery {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Processed()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.t.Fatalf("webhook receiver: %d events processed after %s; want %d (%d requests)", len(got), timeout, n, r.Requests())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
