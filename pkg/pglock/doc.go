// Package pglock is a tusd handler.Locker on PostgreSQL advisory locks, so
// that several intake instances sharing one database can each serve any
// request for any upload.
//
// # How it holds locks
//
// Each Locker keeps one dedicated connection, its lock session, outside the
// catalog's pool. An upload's lock is a session-level advisory lock on that
// connection (pg_try_advisory_lock on a 64-bit hash of the upload id). All
// of an instance's locks share the one session, so holding a lock for a
// long PATCH costs no pool connection: the connection budget per instance
// is the catalog pool plus two (the lock session and the listener below),
// however many uploads are in flight.
//
// Advisory locks are re-entrant within a session, so mutual exclusion
// between requests of the same instance is kept in process: an upload has
// at most one local holder, and only that holder takes the advisory lock.
//
// When the process dies, PostgreSQL ends its session and drops every lock
// it held: no lock outlives its holder. When the session is lost while the
// process lives (a database restart, a network cut), every holder is asked
// to release at once, because its lock is gone; Unlock of such a lock is
// then a no-op. A keepalive check notices a lost session within
// Options.CheckInterval while locks are held.
//
// # Release requests
//
// tusd's semantics within one process: a request that needs an upload held
// by another asks the holder to release (requestRelease), and a stale PATCH
// then stores what it has and yields. Across instances a waiter NOTIFYs the
// release channel with the upload id; every instance LISTENs on a second
// connection and calls its holder's release function. Unlocking a lock that was
// asked for NOTIFYs the released channel in the same statement, which
// wakes the waiters at once; they also retry on a short poll, so a missed
// notification costs latency, never correctness.
//
// A wait that reaches its context's deadline fails with ErrLockTimeout, a
// 423 Locked that tus clients retry. A lock session that cannot be
// established fails fast with ErrUnavailable (503).
package pglock
