// Package storage wraps a tusd DataStore (the file store or the S3 store)
// so that every upload the store holds has a session in the catalog, every
// change the store makes is reflected there, and every complete upload has a
// verified SHA-256 and is stored once.
//
//   - Sessions: creation, the committed offset (once per PATCH, after the
//     store has the bytes), a declared length, completion, termination and
//     concatenation are recorded in the catalog.
//   - Digests: the body is teed into a SHA-256 whose state is persisted with
//     the offset, so a resumed upload continues it without re-reading; when
//     no state covers the upload, finishing reads the object back once.
//   - Blobs: a complete upload's object becomes the blob for its digest, or,
//     when that content is already stored, the session references the
//     existing blob and its own object is deleted. Complete sessions are
//     served from their blob; the bytes go with the last reference.
//
// The store is the source of truth for bytes and offsets; the catalog for
// existence, ownership, state, digests and blobs. Where the two disagree
// after a crash, GetInfo repairs the catalog from the store.
//
// This package must never touch the catalog per chunk of a request body,
// never report an offset the store does not hold, and never keep the bytes
// of an upload whose declared digest they do not match.
package storage
