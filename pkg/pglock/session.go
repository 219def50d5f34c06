package pglock

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxBatch bounds how many statements go to the lock session in one round
// trip.
const maxBatch = 128

// stmt is one statement for the lock session, which runs statements one
// goroutine at a time: those that arrive while a batch is on the wire go
// together in the next one, pipelined, so that concurrent lock operations
// share a round trip instead of queueing for one each.
type stmt struct {
	sql  string
	args []any
	// scan receives the statement's one row; nil discards it.
	scan []any
	// connect says to connect the session if there is none. Without it,
	// the statement is skipped when there is no session (nothing to
	// unlock, nothing to check).
	connect bool
	// onGen, when not zero, runs the statement only on that session
	// generation; on another it is skipped (its lock is gone already).
	onGen uint64

	done chan stmtResult
}

type stmtResult struct {
	gen     uint64 // the session generation it ran on
	skipped bool
	err     error
}

// run hands s to the session and waits for its result.
func (l *Locker) run(s stmt) stmtResult {
	s.done = make(chan stmtResult, 1)
	select {
	case l.stmts <- &s:
	case <-l.closing:
		return stmtResult{err: ErrUnavailable}
	}
	return <-s.done
}

// session owns the lock connection until ctx ends, and closes it then,
// which releases every lock still held.
type session struct {
	l        *Locker
	conn     *pgx.Conn
	gen      uint64 // counts connections; a holder records the one its lock is on
	failedAt time.Time
}

func (l *Locker) serveSession(ctx context.Context) {
	s := &session{l: l}
	defer s.close(nil)
	for {
		var batch []*stmt
		select {
		case <-ctx.Done():
			return
		case st := <-l.stmts:
			batch = append(batch, st)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case st := <-l.stmts:
				batch = append(batch, st)
			default:
				break more
			}
		}
		s.runBatch(batch)
	}
}

func (s *session) runBatch(batch []*stmt) {
	if s.conn == nil {
		for _, st := range batch {
			if st.connect {
				s.connect()
				break
			}
		}
	}
	var run []*stmt
	for _, st := range batch {
		switch {
		case s.conn == nil && st.connect:
			st.done <- stmtResult{err: ErrUnavailable}
		case s.conn == nil, st.onGen != 0 && st.onGen != s.gen:
			st.done <- stmtResult{gen: s.gen, skipped: true}
		default:
			run = append(run, st)
		}
	}
	if len(run) == 0 {
		return
	}
	b := &pgx.Batch{}
	for _, st := range run {
		q := b.Queue(st.sql, st.args...)
		if st.scan != nil {
			q.QueryRow(func(row pgx.Row) error { return row.Scan(st.scan...) })
		} else {
			q.Exec(func(pgconn.CommandTag) error { return nil })
		}
	}
	// Never the callers' contexts: pgx closes a connection whose statement
	// is cancelled, and that would drop every lock of the instance.
	ctx, cancel := context.WithTimeout(context.Background(), s.l.opts.OpTimeout)
	err := s.conn.SendBatch(ctx, b).Close()
	cancel()
	if err != nil {
		s.l.log.Warn("upload lock session failed; its locks are released", "error", err)
		s.close(err)
		for _, st := range run {
			st.done <- stmtResult{err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
		}
		return
	}
	for _, st := range run {
		st.done <- stmtResult{gen: s.gen}
	}
}

// connect opens the session, unless a connect failed less than
// RetryInterval ago: then callers fail fast instead of each waiting for a
// database that is down.
func (s *session) connect() {
	if time.Since(s.failedAt) < s.l.opts.RetryInterval {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.l.opts.OpTimeout)
	c, err := pgx.ConnectConfig(ctx, s.l.cfg)
	cancel()
	if err != nil {
		s.failedAt = time.Now()
		s.l.log.Warn("cannot connect the upload lock session", "error", err)
		return
	}
	if err := s.shortenKeepalive(c); err != nil {
		s.l.log.Warn("cannot shorten the lock session's TCP keepalive; the locks of a host that vanishes stay held until PostgreSQL's own keepalive gives up", "error", err)
	}
	s.conn = c
	s.gen++
}

// shortenKeepalive makes PostgreSQL notice within about half a minute
// that the lock session's host is gone (power loss, a network partition),
// rather than after the system default of two hours: until then the host's
// locks would stay held. kill -9 needs none of this; the kernel closes the
// connection. The instance itself notices sooner (its keepalive check
// fails after OpTimeout) and asks its holders to release first.
func (s *session) shortenKeepalive(c *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.l.opts.OpTimeout)
	defer cancel()
	_, err := c.Exec(ctx, `SELECT set_config('tcp_keepalives_idle', '10', false),
		set_config('tcp_keepalives_interval', '5', false),
		set_config('tcp_keepalives_count', '3', false),
		set_config('tcp_user_timeout', '25000', false)`)
	return err
}

// close ends the session. Every lock held on it is gone, so with a cause
// (a failure, not Close) each holder is asked to release now.
func (s *session) close(cause error) {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.conn.Close(ctx)
	cancel()
	s.conn = nil
	if cause != nil {
		s.l.opts.Metrics.sessionLost()
		s.l.lost(s.gen)
	}
}
