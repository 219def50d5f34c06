// Package catalog keeps the record of every upload session: who owns it, how
// large it is, how many bytes are durably committed, and where it is in its
// life. It has one interface and two implementations, PostgreSQL (for
// production and scale-out) and SQLite (the zero-setup embedded default), both
// held to the same conformance suite in catalogtest.
//
// The catalog never holds upload bytes and is never written per chunk of a
// request: callers update the committed offset once per PATCH, after the
// store has the bytes.
//
// This package holds only the types, the interface and the rules every
// implementation shares; it must never import a database driver.
package catalog
