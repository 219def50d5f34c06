package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intake-dev/intake/migrations"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

var (
	_ catalog.Catalog  = (*Catalog)(nil)
	_ catalog.Migrator = (*Catalog)(nil)
)

// Options tunes Open.
type Options struct {
	// MaxConns caps the connection pool. Defaults to pgxpool's default, the
	// greater of 4 and runtime.NumCPU(); a pool_max_conns parameter in the
	// URL applies when this is 0.
	MaxConns int32
}

func (o Options) validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("max connections must not be negative, got %d", o.MaxConns)
	}
	return nil
}

// Catalog is a catalog.Catalog stored in PostgreSQL.
type Catalog struct {
	pool  *pgxpool.Pool
	steps []migrate.Step
}

var loadSteps = sync.OnceValues(func() ([]migrate.Step, error) {
	return migrate.Parse(migrations.FS, "postgres")
})

// defaultConnectTimeout bounds each new connection unless the URL sets
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// Open connects to the database at url (a postgres:// URL or a key=value
// DSN) and checks that it answers. It does not migrate; call MigrateUp.
// Errors never contain the URL.
func Open(ctx context.Context, url string, opts Options) (*Catalog, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	steps, err := loadSteps()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, parseError(err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database host that drops packets must turn into a prompt 503,
		// not a request hanging for the OS's TCP timeout. The URL's
		// connect_timeout, when given, wins.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("error creating connection pool: %w", connError(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("error connecting to database: %w", connError(err))
	}
	return &Catalog{pool: pool, steps: steps}, nil
}

// parseError describes a bad connection string without quoting it: pgx's own
// message includes the string with only the password masked. The underlying
// cause ("invalid port ... after host", "sslmode is invalid") is kept, minus
// anything it quotes, which may be a piece of the string.
func parseError(err error) error {
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) && pce.Unwrap() != nil {
		return fmt.Errorf("error parsing database url: %s", quoted.ReplaceAllString(pce.Unwrap().Error(), "…"))
	}
	return errors.New("error parsing database url")
}

var quoted = regexp.MustCompile("\"[^\"]*\"|`[^`]*`|'[^']*'")

// connError drops the "failed to connect to `user=... database=...`" prefix
// pgx puts on connection errors, keeping what went wrong and where.
func connError(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

// dbError is the one place driver errors become catalog errors.
func dbError(action string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return catalog.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return catalog.ErrExists
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrInvalid):
		return err
	}
	return wrap(action, err)
}

// wrap adds context to an error that needs no mapping (migrations, pings).
func wrap(action string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("error %s: %w", action, connError(err))
}

// Pool returns the connection pool, for callers that need PostgreSQL
// features beyond the catalog (advisory locks, LISTEN). The catalog still
// owns it: do not close it.
func (c *Catalog) Pool() *pgxpool.Pool { return c.pool }

// Ping checks that the database answers.
func (c *Catalog) Ping(ctx context.Context) error {
	return wrap("pinging database", c.pool.Ping(ctx))
}

// Close closes the pool, waiting for connections in use to be returned.
func (c *Catalog) Close() error {
	c.pool.Close()
	return nil
}

// insertColumns are what Create and CreateDeduped write; the hash state
// starts out empty.
const insertColumns = `id, owner, size, committed_offset, state, metadata, is_partial,
	is_final, partial_ids, storage, created_at, updated_at, completed_at, sha256, blob_sha256,
	content_type`

// columns are what scanSession reads, and listColumns the same without the
// hash state, which List leaves out.
const (
	sessionColumns = `id, owner, size, committed_offset, state, metadata, is_partial,
	is_final, partial_ids, storage, created_at, updated_at, completed_at,
	hash_offset, coalesce(sha256, ''), coalesce(blob_sha256, ''), coalesce(content_type, ''), `
	columns     = sessionColumns + `hash_state`
	listColumns = sessionColumns + `NULL::bytea`
)

// currentColumns are what rule.Current holds, for scanCurrent.
const currentColumns = `state, committed_offset, size, hash_state, hash_offset,
	coalesce(sha256, ''), coalesce(blob_sha256, ''), is_partial, coalesce(content_type, '')`

const blobColumns = `sha256, size, upload_id, storage, refs, created_at, coalesce(content_type, '')`

// bump is the new updated_at of a changed row: the database clock, but never
// earlier than one microsecond after the previous value, so UpdatedAt
// strictly increases with each change even within one clock tick.
const bump = `greatest(now(), updated_at + interval '1 microsecond')`

func scanSession(row pgx.Row) (catalog.Session, error) {
	var (
		s     catalog.Session
		state string
	)
	err := row.Scan(&s.ID, &s.Owner, &s.Size, &s.Offset, &state, &s.Metadata, &s.IsPartial,
		&s.IsFinal, &s.PartialIDs, &s.Storage, &s.CreatedAt, &s.UpdatedAt, &s.CompletedAt,
		&s.HashOffset, &s.SHA256, &s.BlobSHA256, &s.ContentType, &s.HashState)
	if err != nil {
		return catalog.Session{}, err
	}
	s.State = catalog.State(state)
	rule.Loaded(&s)
	return s, nil
}

func scanCurrent(row pgx.Row) (rule.Current, error) {
	var (
		cur   rule.Current
		state string
	)
	err := row.Scan(&state, &cur.Offset, &cur.Size, &cur.HashState, &cur.HashOffset,
		&cur.SHA256, &cur.Blob, &cur.IsPartial, &cur.ContentType)
	cur.State = catalog.State(state)
	return cur, err
}

func scanBlob(row pgx.Row) (catalog.Blob, error) {
	var b catalog.Blob
	if err := row.Scan(&b.SHA256, &b.Size, &b.UploadID, &b.Storage, &b.Refs, &b.CreatedAt, &b.ContentType); err != nil {
		return catalog.Blob{}, err
	}
	rule.LoadedBlob(&b)
	return b, nil
}

// nullString turns "" into NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullTime turns a zero time into NULL, for the database to fill in.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Create inserts s and its upload.created event. Zero times come from the
// database clock, like every later change, so that clocks of several intake
// hosts never mix in a row.
func (c *Catalog) Create(ctx context.Context, s catalog.Session) error {
	s, err := rule.Create(s)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		created, err := scanSession(tx.QueryRow(ctx, insertSession+` RETURNING `+columns, insertArgs(s)...))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, catalog.EventCreated, created, nil)
	})
	return dbError("inserting upload session", err)
}

const insertSession = `
	INSERT INTO uploads (` + insertColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		coalesce($11::timestamptz, now()),
		coalesce($12::timestamptz, $11::timestamptz, now()),
		CASE WHEN $5 = 'complete'
			THEN coalesce($13::timestamptz, $12::timestamptz, $11::timestamptz, now())
			ELSE $13::timestamptz
		END,
		$14, $15, $16)`

// insertArgs are insertSession's arguments for s, which has been through
// rule.Create or rule.CreateDeduped.
func insertArgs(s catalog.Session) []any {
	return []any{s.ID, s.Owner, s.Size, s.Offset, string(s.State), s.Metadata, s.IsPartial,
		s.IsFinal, s.PartialIDs, s.Storage, nullTime(s.CreatedAt), nullTime(s.UpdatedAt), s.CompletedAt,
		nullString(s.SHA256), nullString(s.BlobSHA256), nullString(s.ContentType)}
}

// Get returns the session with the id.
func (c *Catalog) Get(ctx context.Context, id string) (catalog.Session, error) {
	if !rule.StorableID(id) {
		return catalog.Session{}, catalog.ErrNotFound
	}
	s, err := scanSession(c.pool.QueryRow(ctx, `SELECT `+columns+` FROM uploads WHERE id = $1`, id))
	if err != nil {
		return catalog.Session{}, dbError("getting upload session", err)
	}
	return s, nil
}

func (c *Catalog) current(ctx context.Context, id string) (rule.Current, error) {
	return scanCurrent(c.pool.QueryRow(ctx, `SELECT `+currentColumns+` FROM uploads WHERE id = $1`, id))
}

// change runs a conditional UPDATE (its WHERE must admit exactly what check
// allows) through rule.Apply.
func (c *Catalog) change(ctx context.Context, action, id, sql string, args []any, check rule.Check) error {
	update := func(ctx context.Context) (bool, error) {
		tag, err := c.pool.Exec(ctx, sql, append([]any{id}, args...)...)
		return tag.RowsAffected() > 0, err
	}
	current := func(ctx context.Context) (rule.Current, error) { return c.current(ctx, id) }
	return dbError(action, rule.Apply(ctx, update, current, check))
}

// SetOffset records that offset bytes are committed.
func (c *Catalog) SetOffset(ctx context.Context, id string, offset int64) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.OffsetArg(offset); err != nil {
		return err
	}
	return c.change(ctx, "updating offset", id, `
		UPDATE uploads SET committed_offset = $2, updated_at = `+bump+`
		WHERE id = $1 AND state = 'receiving' AND committed_offset < $2
			AND (size IS NULL OR $2 <= size)`,
		[]any{offset},
		func(cur rule.Current) (bool, error) { return rule.SetOffset(cur, offset) })
}

// CommitOffset records the committed offset and the digest state at it in
// one statement. SetOffset's WHERE, plus: at the current offset, only a
// different state is a change.
func (c *Catalog) CommitOffset(ctx context.Context, id string, offset int64, hashState []byte) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.OffsetArg(offset); err != nil {
		return err
	}
	state, hashOffset := rule.HashState(offset, hashState)
	return c.change(ctx, "committing offset", id, `
		UPDATE uploads SET committed_offset = $2, hash_state = $3::bytea, hash_offset = $4,
			updated_at = `+bump+`
		WHERE id = $1 AND state = 'receiving' AND (size IS NULL OR $2 <= size)
			AND (committed_offset < $2 OR (committed_offset = $2
				AND (hash_state IS DISTINCT FROM $3::bytea OR hash_offset <> $4)))`,
		[]any{offset, state, hashOffset},
		func(cur rule.Current) (bool, error) { return rule.CommitOffset(cur, offset, state, hashOffset) })
}

// DeclareLength fixes the size of a deferred-length session.
func (c *Catalog) DeclareLength(ctx context.Context, id string, size int64) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.LengthArg(size); err != nil {
		return err
	}
	return c.change(ctx, "declaring length", id, `
		UPDATE uploads SET size = $2, updated_at = `+bump+`
		WHERE id = $1 AND size IS NULL AND state = 'receiving' AND committed_offset <= $2`,
		[]any{size},
		func(cur rule.Current) (bool, error) { return rule.DeclareLength(cur, size) })
}

// Complete moves a receiving session to StateComplete.
func (c *Catalog) Complete(ctx context.Context, id string, offset int64) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.OffsetArg(offset); err != nil {
		return err
	}
	return c.change(ctx, "completing upload session", id, `
		UPDATE uploads SET committed_offset = $2, state = 'complete',
			updated_at = `+bump+`, completed_at = `+bump+`
		WHERE id = $1 AND state = 'receiving' AND size = $2 AND committed_offset <= $2`,
		[]any{offset},
		func(cur rule.Current) (bool, error) { return rule.Complete(cur, offset) })
}

// SetState moves a session to terminated or failed, with its event, in a
// transaction that locks the row first so the rule's verdict holds until
// the change is written.
func (c *Catalog) SetState(ctx context.Context, id string, state catalog.State) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.StateArg(state); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		cur, err := lockSession(ctx, tx, id)
		if err != nil {
			return err
		}
		if apply, err := rule.SetState(cur, state); !apply {
			return err
		}
		// The rule lets no session with a blob through: nothing to drop.
		s, err := scanSession(tx.QueryRow(ctx, `
			UPDATE uploads SET state = $2, updated_at = `+bump+`
			WHERE id = $1 RETURNING `+columns, id, string(state)))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, rule.StateEvent(state), s, nil)
	})
	return dbError("setting state", err)
}

// List returns sessions matching opts, newest first. Only the filters in use
// go into the query, so PostgreSQL can pick the matching index even from a
// cached generic plan.
func (c *Catalog) List(ctx context.Context, opts catalog.ListOptions) ([]catalog.Session, error) {
	limit, err := rule.ListLimit(opts)
	if err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if opts.Owner != "" {
		where = append(where, "owner = "+arg(opts.Owner))
	}
	if opts.State != "" {
		where = append(where, "state = "+arg(string(opts.State)))
	}
	if !opts.Before.IsZero() {
		before := rule.Timestamp(opts.Before)
		if opts.BeforeID != "" {
			where = append(where, fmt.Sprintf("(created_at, id) < (%s::timestamptz, %s)", arg(before), arg(opts.BeforeID)))
		} else {
			where = append(where, "created_at < "+arg(before)+"::timestamptz")
		}
	}
	sql := `SELECT ` + listColumns + ` FROM uploads`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit)

	rows, err := c.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError("listing upload sessions", err)
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Session, error) {
		return scanSession(row)
	})
	if err != nil {
		return nil, dbError("listing upload sessions", err)
	}
	return sessions, nil
}
