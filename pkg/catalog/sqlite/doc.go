// Package sqlite is the SQLite catalog, the zero-setup default for a single
// intake instance. It uses modernc.org/sqlite, a pure-Go SQLite, so intake
// builds without cgo, and owns its schema through the embedded migrations,
// applied only when MigrateUp is called.
//
// Concurrency: SQLite allows one writer at a time. Rather than let many
// connections race for the write lock and fail with SQLITE_BUSY, the catalog
// keeps two pools on the file: a writer pool of exactly one connection,
// through which every write goes (so writers queue in Go, in order), and a
// pool of read-only connections, which WAL mode lets run alongside the
// writer. Write transactions begin IMMEDIATE, taking the write lock up front,
// and busy_timeout covers other processes (an operator's migrate command)
// holding it for a moment. Outbox claims are such write transactions too,
// so two claims (even from two processes) never overlap.
//
// Pragmas, on every connection:
//   - journal_mode=WAL: readers and the writer do not block each other.
//   - busy_timeout=5000: wait up to 5s for a lock held elsewhere, not fail.
//   - foreign_keys=ON: SQLite leaves them off by default; uploads.blob_sha256
//     references blobs, so a session never points at a deleted blob.
//   - synchronous=NORMAL: in WAL mode a commit is safe from an intake crash
//     and the database never corrupts, but a power loss may forget the last
//     commits. That is safe here: the catalog only ever lags the store, a
//     lost offset update makes the client resend bytes, it never skips any.
//     FULL would fsync every PATCH's offset update.
//
// It must never be opened on ":memory:" (each connection would see its own
// database), never write outside the writer pool, and never be written per
// chunk of upload data.
package sqlite
