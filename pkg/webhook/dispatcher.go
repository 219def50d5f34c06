package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/intake-dev/intake/pkg/catalog"
)

// EventStore is the part of the catalog the dispatcher needs: the outbox.
type EventStore interface {
	ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]catalog.Event, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	MarkFailed(ctx context.Context, id string, attempts int, next time.Time, lastErr string, dead bool) error
}

var _ EventStore = catalog.Catalog(nil)

// Options configure a Dispatcher. Zero values take the documented defaults.
type Options struct {
	// URL receives the POSTs. Required.
	URL string
	// Secret is the HMAC-SHA256 key of the Webhook-Signature header.
	Secret string
	// DownloadBase is the public URL of the tus endpoint, ending in "/";
	// with it, complete uploads carry a download_url. Defaults to "" (none).
	DownloadBase string
	// Timeout bounds each request, from connecting to reading the status.
	// Defaults to 10s.
	Timeout time.Duration
	// MaxAge is how long after it occurred an event is retried before it is
	// dead-lettered. Defaults to 24h.
	MaxAge time.Duration
	// BackoffBase and BackoffCap shape the retry delay after the n-th failed
	// attempt: a uniformly random duration in [0, min(cap, base*2^(n-1))]
	// (full jitter). Default to 1s and 10m.
	BackoffBase, BackoffCap time.Duration
	// PollInterval is how long an idle dispatcher waits before looking for
	// due events again. Defaults to 1s.
	PollInterval time.Duration
	// BatchSize is how many events one claim leases. Defaults to 10.
	BatchSize int
	// Client sends the requests; its redirect policy is replaced (redirects
	// are not followed: a 3xx is a failed attempt). Defaults to a client of
	// its own.
	Client *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics defaults to unregistered ones.
	Metrics *Metrics
}

func (o *Options) setDefaults() {
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.MaxAge, 24*time.Hour)
	def(&o.BackoffBase, time.Second)
	def(&o.BackoffCap, 10*time.Minute)
	def(&o.PollInterval, time.Second)
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	client := http.Client{}
	if o.Client != nil {
		client = *o.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.Client = &client
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
}

// Dispatcher delivers due outbox events to one receiver.
type Dispatcher struct {
	store EventStore
	opts  Options
}

// New returns a dispatcher over store; Run starts it.
func New(store EventStore, opts Options) *Dispatcher {
	opts.setDefaults()
	return &Dispatcher{store: store, opts: opts}
}

// bookkeeping bounds each catalog write; it also runs after Run's context
// has ended, so that an answered request is recorded.
const bookkeeping = 5 * time.Second

// lease is how long a claim keeps other dispatchers off a batch: long
// enough to send every event of it, each at its timeout, and record the
// outcome.
func (d *Dispatcher) lease() time.Duration {
	return time.Duration(d.opts.BatchSize)*(d.opts.Timeout+bookkeeping) + 30*time.Second
}

// Run delivers events until ctx ends. A request in flight then finishes
// (within its timeout) and is recorded; the rest of its batch is released
// for the next dispatcher. Run returns when it has stopped.
func (d *Dispatcher) Run(ctx context.Context) {
	claimFailures := 0
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		next, err := d.batch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			claimFailures++
			wait = min(d.opts.PollInterval<<min(claimFailures, 5), 30*time.Second)
			d.opts.Logger.WarnContext(ctx, "webhook: claiming events failed", "error", err, "retry_in", wait)
		default:
			claimFailures = 0
			wait = next
		}
	}
}

// batch claims due events and sends them oldest first, and returns how
// long to wait before the next claim: the poll interval when nothing was
// due, nothing when there may be more. It stops early when the receiver
// looks unavailable, moving the rest of the batch to the failed event's
// next attempt so that order is kept, and then pauses until that time.
func (d *Dispatcher) batch(ctx context.Context) (next time.Duration, err error) {
	now := time.Now()
	lease := d.lease()
	events, err := d.store.ClaimEvents(ctx, now, d.opts.BatchSize, lease)
	if err != nil {
		return 0, err
	}
	leaseEnd := now.Add(lease)
	if len(events) == 0 {
		d.opts.Metrics.lag.Set(0)
		return d.opts.PollInterval, nil
	}
	d.opts.Metrics.lag.Set(now.Sub(events[0].OccurredAt).Seconds())

	for i, ev := range events {
		if ctx.Err() != nil {
			d.release(events[i:], time.Now())
			return 0, nil
		}
		// A request that could outlast the lease might overlap another
		// dispatcher's claim of the same event: leave the rest alone
		// (it is theirs once the lease ends).
		if time.Now().Add(d.opts.Timeout + bookkeeping).After(leaseEnd) {
			return 0, nil
		}
		res := d.send(ctx, ev)
		at := time.Now()
		if res.err == nil {
			d.write(ctx, ev, "marking event delivered", func(ctx context.Context) error {
				return d.store.MarkDelivered(ctx, ev.ID, at)
			})
			continue
		}
		attempts := ev.Attempts + 1
		delay := d.backoff(attempts)
		deadline := ev.OccurredAt.Add(d.opts.MaxAge)
		dead := !at.Before(deadline)
		retryAt := at.Add(delay)
		if retryAt.After(deadline) {
			retryAt = deadline
		}
		log := d.opts.Logger.With("event", ev.ID, "type", ev.Type, "upload", ev.UploadID, "attempts", attempts, "error", res.err)
		if dead {
			retryAt = at
			d.opts.Metrics.dead.Inc()
			log.ErrorContext(ctx, "webhook: giving up on event; it is dead-lettered (intake events retry ID sends it again)", "max_age", d.opts.MaxAge)
		} else {
			log.WarnContext(ctx, "webhook: delivery failed; will retry", "retry_in", retryAt.Sub(at).Round(time.Millisecond))
		}
		d.write(ctx, ev, "recording failed delivery", func(ctx context.Context) error {
			return d.store.MarkFailed(ctx, ev.ID, attempts, retryAt, res.err.Error(), dead)
		})
		if res.unavailable {
			// The next events would most likely fail too; trying them
			// would also let them overtake this one when the receiver
			// is back.
			resume := at.Add(delay)
			d.release(events[i+1:], resume)
			return max(time.Until(resume), 0), nil
		}
	}
	return 0, nil
}

// release makes claimed but unsent events due at next, without counting an
// attempt, so that they need not wait for the lease to end.
func (d *Dispatcher) release(events []catalog.Event, next time.Time) {
	for _, ev := range events {
		d.write(context.Background(), ev, "releasing claimed event", func(ctx context.Context) error {
			return d.store.MarkFailed(ctx, ev.ID, ev.Attempts, next, ev.LastError, false)
		})
	}
}

// write runs one outbox write, also after ctx has ended (an answered
// request must be recorded), and logs its failure. The event then stays
// leased and is sent again once the lease ends: at least once, never lost.
func (d *Dispatcher) write(ctx context.Context, ev catalog.Event, what string, f func(context.Context) error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeeping)
	defer cancel()
	if err := f(wctx); err != nil {
		d.opts.Logger.ErrorContext(ctx, "webhook: "+what, "event", ev.ID, "error", err)
	}
}

// backoff returns the delay after the n-th failed attempt (n >= 1): full
// jitter over an exponentially growing, capped window.
func (d *Dispatcher) backoff(n int) time.Duration {
	window := d.opts.BackoffBase
	for i := 1; i < n && window < d.opts.BackoffCap; i++ {
		window *= 2
	}
	return rand.N(min(window, d.opts.BackoffCap) + 1)
}

// result is one attempt's outcome. unavailable says the receiver as a
// whole seems down (no answer, 408, 425, 429, 5xx) rather than refusing
// this one event.
type result struct {
	err         error
	unavailable bool
}

// send POSTs one event.
func (d *Dispatcher) send(ctx context.Context, ev catalog.Event) result {
	body, err := NewBody(ev, d.opts.DownloadBase)
	if err != nil {
		return result{err: err}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return result{err: fmt.Errorf("encoding event: %w", err)}
	}
	// The request is not cut short by shutdown, only by its timeout: an
	// answered request is then recorded instead of being sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.opts.URL, bytes.NewReader(data))
	if err != nil {
		return result{err: errors.New("invalid webhook URL")}
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "intake-webhook")
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(d.opts.Secret, ts, data))

	start := time.Now()
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		d.opts.Metrics.attempt(false, time.Since(start))
		return result{err: transportError(rctx, err, d.opts.Timeout), unavailable: true}
	}
	// Draining a little lets the connection be reused; a receiver that
	// sends more is not waited for.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	d.opts.Metrics.attempt(ok, time.Since(start))
	if ok {
		return result{}
	}
	code := resp.StatusCode
	return result{
		err:         fmt.Errorf("receiver answered %d %s", code, http.StatusText(code)),
		unavailable: code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests,
	}
}

// transportError describes a failed request without the URL, which may
// hold a token and would end up in the catalog and in `intake events ls`.
func transportError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("sending: %w", err)
}
