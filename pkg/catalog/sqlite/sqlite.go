package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/intake-dev/intake/migrations"
	"github.com/intake-dev/intake/pkg/catalog"
	"github.com/intake-dev/intake/pkg/catalog/internal/migrate"
	"github.com/intake-dev/intake/pkg/catalog/internal/rule"
)

var (
	_ catalog.Catalog  = (*Catalog)(nil)
	_ catalog.Migrator = (*Catalog)(nil)
)

// Catalog is a catalog.Catalog stored in a SQLite file.
type Catalog struct {
	write *sql.DB // one connection: every write, in order
	read  *sql.DB // read-only connections
	steps []migrate.Step
}

var loadSteps = sync.OnceValues(func() ([]migrate.Step, error) {
	return migrate.Parse(migrations.FS, "sqlite")
})

// Open opens (creating if needed) the database file at path, and its parent
// directory. It does not migrate; call MigrateUp.
func Open(ctx context.Context, path string) (*Catalog, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, errors.New("sqlite catalog needs a plain file path")
	}
	steps, err := loadSteps()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("error resolving database path: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("error creating database directory: %w", err)
	}

	write, err := openPool(ctx, abs, "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)

	// The writer has switched the file to WAL by now; readers only read.
	read, err := openPool(ctx, abs, "query_only(1)", "foreign_keys(1)")
	if err != nil {
		write.Close()
		return nil, err
	}
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	return &Catalog{write: write, read: read, steps: steps}, nil
}

// openPool opens a pool whose every connection runs the pragmas. The path
// goes in a file: URI, escaped, so that '?' or '#' in it cannot be read as
// parameters.
func openPool(ctx context.Context, abs string, pragmas ...string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("error opening database: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("error opening database: %w", err)
	}
	return db, nil
}

// dbError is the one place driver errors become catalog errors.
func dbError(action string, err error) error {
	var liteErr *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return catalog.ErrNotFound
	case errors.As(err, &liteErr) &&
		(liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE):
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
	return fmt.Errorf("error %s: %w", action, err)
}

// Ping checks that both pools answer.
func (c *Catalog) Ping(ctx context.Context) error {
	if err := c.write.PingContext(ctx); err != nil {
		return wrap("pinging database", err)
	}
	return wrap("pinging database", c.read.PingContext(ctx))
}

// Close closes both pools.
func (c *Catalog) Close() error {
	return errors.Join(c.read.Close(), c.write.Close())
}

// Times are stored as INTEGER microseconds since the epoch.
func toDB(t time.Time) int64 { return t.UnixMicro() }

func fromDB(us int64) time.Time { return time.UnixMicro(us).UTC() }

func (c *Catalog) clock() int64 { return toDB(rule.Timestamp(time.Now())) }

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
	listColumns = sessionColumns + `NULL`
)

// currentColumns are what rule.Current holds, for scanCurrent.
const currentColumns = `state, committed_offset, size, hash_state, hash_offset,
	coalesce(sha256, ''), coalesce(blob_sha256, ''), is_partial, coalesce(content_type, '')`

// bump is the new updated_at of a changed row (?3 is the clock): never
// earlier than one microsecond after the previous value, so UpdatedAt
// strictly increases with each change even within one clock tick.
const bump = `max(?3, updated_at + 1)`

type scanner interface{ Scan(dest ...any) error }

func scanSession(row scanner) (catalog.Session, error) {
	var (
		s                           catalog.Session
		state                       string
		metadata, partials, storage string
		created, updated            int64
		completed                   sql.NullInt64
		size                        sql.NullInt64
	)
	err := row.Scan(&s.ID, &s.Owner, &size, &s.Offset, &state, &metadata, &s.IsPartial,
		&s.IsFinal, &partials, &storage, &created, &updated, &completed,
		&s.HashOffset, &s.SHA256, &s.BlobSHA256, &s.ContentType, &s.HashState)
	if err != nil {
		return catalog.Session{}, err
	}
	s.State = catalog.State(state)
	if size.Valid {
		s.Size = &size.Int64
	}
	for _, f := range []struct {
		raw string
		dst any
	}{{metadata, &s.Metadata}, {partials, &s.PartialIDs}, {storage, &s.Storage}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return catalog.Session{}, fmt.Errorf("error decoding stored session %s: %w", s.ID, err)
		}
	}
	s.CreatedAt, s.UpdatedAt = fromDB(created), fromDB(updated)
	if completed.Valid {
		t := fromDB(completed.Int64)
		s.CompletedAt = &t
	}
	rule.Loaded(&s)
	return s, nil
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// Create inserts s and its upload.created event.
func (c *Catalog) Create(ctx context.Context, s catalog.Session) error {
	s, err := rule.Create(s)
	if err != nil {
		return err
	}
	args, err := c.insertArgs(s)
	if err != nil {
		return err
	}
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		created, err := scanSession(tx.QueryRowContext(ctx, insertSession+` RETURNING `+columns, args...))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, catalog.EventCreated, created, nil)
	})
	return dbError("inserting upload session", err)
}

const insertSession = `
	INSERT INTO uploads (` + insertColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertArgs are insertSession's arguments for s, which has been through
// rule.Create or rule.CreateDeduped; zero times come from the clock.
func (c *Catalog) insertArgs(s catalog.Session) ([]any, error) {
	metadata, err := jsonText(s.Metadata)
	if err != nil {
		return nil, err
	}
	partials, err := jsonText(s.PartialIDs)
	if err != nil {
		return nil, err
	}
	storage, err := jsonText(s.Storage)
	if err != nil {
		return nil, err
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = fromDB(c.clock())
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	var completed sql.NullInt64
	if s.CompletedAt != nil {
		completed = sql.NullInt64{Int64: toDB(*s.CompletedAt), Valid: true}
	} else if s.State == catalog.StateComplete {
		completed = sql.NullInt64{Int64: toDB(s.UpdatedAt), Valid: true}
	}
	var size sql.NullInt64
	if s.Size != nil {
		size = sql.NullInt64{Int64: *s.Size, Valid: true}
	}
	return []any{s.ID, s.Owner, size, s.Offset, string(s.State), metadata, s.IsPartial,
		s.IsFinal, partials, storage, toDB(s.CreatedAt), toDB(s.UpdatedAt), completed,
		nullString(s.SHA256), nullString(s.BlobSHA256), nullString(s.ContentType)}, nil
}

// nullString turns "" into NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Get returns the session with the id.
func (c *Catalog) Get(ctx context.Context, id string) (catalog.Session, error) {
	if !rule.StorableID(id) {
		return catalog.Session{}, catalog.ErrNotFound
	}
	s, err := scanSession(c.read.QueryRowContext(ctx, `SELECT `+columns+` FROM uploads WHERE id = ?`, id))
	if err != nil {
		return catalog.Session{}, dbError("getting upload session", err)
	}
	return s, nil
}

func (c *Catalog) current(ctx context.Context, id string) (rule.Current, error) {
	return scanCurrent(c.read.QueryRowContext(ctx, `SELECT `+currentColumns+` FROM uploads WHERE id = ?`, id))
}

func scanCurrent(row scanner) (rule.Current, error) {
	var (
		cur   rule.Current
		state string
		size  sql.NullInt64
	)
	err := row.Scan(&state, &cur.Offset, &size, &cur.HashState, &cur.HashOffset,
		&cur.SHA256, &cur.Blob, &cur.IsPartial, &cur.ContentType)
	cur.State = catalog.State(state)
	if size.Valid {
		cur.Size = &size.Int64
	}
	return cur, err
}

// change runs a conditional UPDATE (its WHERE must admit exactly what check
// allows) through rule.Apply. Parameters: ?1 id, ?2 arg, ?3 clock, then
// extra from ?4.
func (c *Catalog) change(ctx context.Context, action, id, query string, arg any, check rule.Check, extra ...any) error {
	update := func(ctx context.Context) (bool, error) {
		res, err := c.write.ExecContext(ctx, query, append([]any{id, arg, c.clock()}, extra...)...)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
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
		UPDATE uploads SET committed_offset = ?2, updated_at = `+bump+`
		WHERE id = ?1 AND state = 'receiving' AND committed_offset < ?2
			AND (size IS NULL OR ?2 <= size)`,
		offset,
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
	var stateArg any // NULL, not an empty blob
	if state != nil {
		stateArg = state
	}
	return c.change(ctx, "committing offset", id, `
		UPDATE uploads SET committed_offset = ?2, hash_state = ?4, hash_offset = ?5,
			updated_at = `+bump+`
		WHERE id = ?1 AND state = 'receiving' AND (size IS NULL OR ?2 <= size)
			AND (committed_offset < ?2 OR (committed_offset = ?2
				AND (hash_state IS NOT ?4 OR hash_offset <> ?5)))`,
		offset,
		func(cur rule.Current) (bool, error) { return rule.CommitOffset(cur, offset, state, hashOffset) },
		stateArg, hashOffset)
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
		UPDATE uploads SET size = ?2, updated_at = `+bump+`
		WHERE id = ?1 AND size IS NULL AND state = 'receiving' AND committed_offset <= ?2`,
		size,
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
		UPDATE uploads SET committed_offset = ?2, state = 'complete',
			updated_at = `+bump+`, completed_at = `+bump+`
		WHERE id = ?1 AND state = 'receiving' AND size = ?2 AND committed_offset <= ?2`,
		offset,
		func(cur rule.Current) (bool, error) { return rule.Complete(cur, offset) })
}

// SetState moves a session to terminated or failed, with its event, in
// one transaction on the writer.
func (c *Catalog) SetState(ctx context.Context, id string, state catalog.State) error {
	if !rule.StorableID(id) {
		return catalog.ErrNotFound
	}
	if err := rule.StateArg(state); err != nil {
		return err
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := currentIn(ctx, tx, id)
		if err != nil {
			return err
		}
		if apply, err := rule.SetState(cur, state); !apply {
			return err
		}
		// The rule lets no session with a blob through: nothing to drop.
		s, err := scanSession(tx.QueryRowContext(ctx, `
			UPDATE uploads SET state = ?2, updated_at = `+bump+`
			WHERE id = ?1 RETURNING `+columns, id, string(state), c.clock()))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, rule.StateEvent(state), s, nil)
	})
	return dbError("setting state", err)
}

// List returns sessions matching opts, newest first.
func (c *Catalog) List(ctx context.Context, opts catalog.ListOptions) ([]catalog.Session, error) {
	limit, err := rule.ListLimit(opts)
	if err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	if opts.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, opts.Owner)
	}
	if opts.State != "" {
		where, args = append(where, "state = ?"), append(args, string(opts.State))
	}
	if !opts.Before.IsZero() {
		before := toDB(rule.Timestamp(opts.Before))
		if opts.BeforeID != "" {
			where, args = append(where, "(created_at, id) < (?, ?)"), append(args, before, opts.BeforeID)
		} else {
			where, args = append(where, "created_at < ?"), append(args, before)
		}
	}
	query := `SELECT ` + listColumns + ` FROM uploads`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := c.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("listing upload sessions", err)
	}
	defer rows.Close()
	var out []catalog.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, dbError("listing upload sessions", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("listing upload sessions", err)
	}
	return out, nil
}
