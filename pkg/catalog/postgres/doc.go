// Package postgres is the PostgreSQL catalog, for production and for several
// intake instances sharing one database. It talks to PostgreSQL through a
// pgx/v5 pool and owns its schema through the embedded migrations, applied
// only when MigrateUp is called, under an advisory lock so instances starting
// together never race. Outbox claims lock their rows with FOR UPDATE SKIP
// LOCKED and lease them in the same statement, so instances sharing the
// database never claim the same event at once.
//
// It must never put the connection URL, or anything from it, in an error
// string (tusd echoes unexpected errors to clients), never hold an
// advisory lock on a connection it hands back to the pool, and never be
// written per chunk of upload data.
package postgres
