// Package storage wraps a tusd DataStore (the file store today, S3 later) so
// that every upload the store holds has a session in the catalog, and every
// change the store makes to an upload is reflected there: creation, the
// committed offset (once per PATCH, after the store has the bytes), a
// declared length, completion, termination and concatenation.
//
// The store stays the source of truth for bytes and offsets; the catalog is
// the source of truth for existence, ownership and state. Where the two
// disagree after a crash, GetInfo repairs the catalog from the store: a
// catalog offset behind the store is moved forward, and an upload whose bytes
// are all stored but which was never finalized is finalized then.
//
// This package must never touch the catalog per chunk of a request body, and
// must never report an offset the store does not hold.
package storage
