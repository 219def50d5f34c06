// Package catalog keeps the record of every upload session: who owns it, how
// large it is, how many bytes are durably committed, and where it is in its
// life. It has one interface and two implementations, PostgreSQL (for
// production and scale-out) and SQLite (the zero-setup embedded default), both
// held to the same conformance suite in catalogtest.
//
// It also records content: the SHA-256 of each finalized upload, and one
// blob per distinct content, with the upload object holding its bytes and a
// count of the complete sessions referencing it, so that the same content
// is stored once. Reference counts change only in the same transaction as
// the sessions that hold them.
//
// And it is the transactional outbox: every state transition writes the
// event that reports it (upload.created, upload.completed, ...) in the
// same transaction as the change, so an event is never lost nor reported
// for a change that did not happen; the webhook dispatcher claims, delivers
// and marks them later, at least once.
//
// The catalog never holds upload bytes and is never written per chunk of a
// request: callers update the committed offset once per PATCH, after the
// store has the bytes.
//
// This package holds only the types, the interface and the rules every
// implementation shares; it must never import a database driver.
package catalog
